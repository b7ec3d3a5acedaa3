"""``linkstack settings``: what outside software must be configured with (the F Prime
options are also what tests/daemon/test_flight_radio.py configures F Prime with)."""

from __future__ import annotations

import json

from linkstack.tools import cli

SCENARIO = """
[sdls]
enabled = false
[frames]
scid_base = 100
tc_segment_header = false
[coding]
rs_e = 8
rs_depth = 2
randomize = false
[gateway]
enabled = true
transport = "udp"
port = 46000
peer_port = 46100
satellites = ["CS-03"]
[radio]
enabled = true
transport = "tcp"
vcids = [2, 3]
farm = "linkstack"
port = 46200
"""


def test_settings_of_a_satellite_follow_its_scenario(tmp_path, capsys):
    path = tmp_path / "s.toml"
    path.write_text(SCENARIO)
    assert cli.main(["settings", "--scenario", str(path), "--satellite", "CS-03", "--json"]) == 0
    (sat,) = json.loads(capsys.readouterr().out)
    assert sat["scid"] == 102 and sat["tc"]["segment_header"] is False
    assert sat["tm"]["frame_length"] == 239 * 2 and sat["tm"]["randomize"] is False
    assert sat["tm"]["reed_solomon"] == {"e": 8, "depth": 2, "basis": "dual"}
    assert sat["gateway"] == {
        "transport": "udp",
        "uplink": "tc_frame",
        "downlink": "tm_frame",
        "host": "127.0.0.1",
        "port": 46002,
        "peer_port": 46102,
    }
    assert sat["radio"]["port"] == 46202 and "peer_port" not in sat["radio"]
    assert sat["radio"]["farm"] == "linkstack" and sat["radio"]["vcids"] == [2, 3]
    # F Prime over UDP has no IP client options; its virtual channel is the flight's
    fprime = sat["fprime_gds"]
    assert fprime[fprime.index("--vcid") + 1] == "2" and "--ip-client" not in fprime
    assert fprime[fprime.index("--frame-size") + 1] == "478"

    assert cli.main(["settings", "--scenario", str(path), "--satellite", "CS-01"]) == 0
    text = capsys.readouterr().out
    assert "CS-01: SCID 100" in text and "RS(255,239) depth 2" in text
    assert "gateway" not in text and "radio: TCP 127.0.0.1:46200" in text


def test_an_unknown_satellite_is_refused_by_name(capsys):
    assert cli.main(["settings", "--satellite", "CS-99"]) == 2
    assert "no satellite 'CS-99'" in capsys.readouterr().err


def test_a_gateway_on_mqtt_names_its_broker_and_topics(tmp_path, capsys):
    path = tmp_path / "mqtt.toml"
    path.write_text(
        '[mqtt]\nhost = "10.0.0.5"\nport = 8883\nprefix = "lab"\n[ground]\nname = "gs1"\n'
        '[gateway]\nenabled = true\ntransport = "mqtt"\nuplink = "packet"\ndownlink = "packet"\n'
    )
    assert cli.main(["settings", "--scenario", str(path), "--satellite", "CS-02", "--json"]) == 0
    (sat,) = json.loads(capsys.readouterr().out)
    assert sat["gateway"] == {
        "transport": "mqtt",
        "uplink": "packet",
        "downlink": "packet",
        "host": "10.0.0.5",
        "port": 8883,
        "up_topic": "lab/gs1/gateway/CS-02/up",
        "down_topic": "lab/gs1/gateway/CS-02/down",
        "repeat_window": 64,
    }
    assert cli.main(["settings", "--scenario", str(path), "--satellite", "CS-02"]) == 0
    assert "gateway: MQTT 10.0.0.5:8883, in on lab/gs1/gateway/CS-02/up" in capsys.readouterr().out


def test_with_sdls_the_frames_are_the_plain_ones_and_the_on_air_lengths_are_said(tmp_path, capsys):
    off = tmp_path / "off.toml"
    off.write_text("[sdls]\nenabled = false\n")
    assert cli.main(["settings", "--scenario", str(off), "--satellite", "CS-02", "--json"]) == 0
    (clear,) = json.loads(capsys.readouterr().out)
    assert "sdls" not in clear
    # SDLS is on by default
    assert cli.main(["settings", "--satellite", "CS-02", "--json"]) == 0
    (sat,) = json.loads(capsys.readouterr().out)
    # AES-256-GCM: SPI 2 + IV 12 octets of header, 16 of MAC
    assert sat["tm"]["frame_length"] == clear["tm"]["frame_length"] - 30
    assert sat["tc"]["max_frame_length"] == clear["tc"]["max_frame_length"] - 30
    assert sat["sdls"]["on_air_tm_frame_length"] == clear["tm"]["frame_length"]
    assert sat["sdls"]["uplink"] == {"spi": 1, "service": "aead"}
