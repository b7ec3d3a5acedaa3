"""Fuzz targets: what users hand the emulator from outside the link, scenario files and
MQTT query requests.

Each is refused with the error that names the problem (ConfigError, RequestError), or
read into something whole.
"""

from __future__ import annotations

import json
import random

from linkstack.daemon import mqtt as _mqtt
from linkstack.errors import ConfigError
from linkstack.runtime import scenario as _scenario
from linkstack.tools.fuzz.engine import FuzzCheckError, Target

_SCENARIO_TEXTS = (
    'name = "fuzz"\n[[constellation.planes]]\nkind = "sso"\ncount = 2\naltitude_km = 550.0\n'
    '[[stations]]\nname = "Svalbard"\n[cop1]\nfop_window = 8\nfarm_window = 16\n',
    '[[stations]]\nname = "Mohe"\nelevation_mask_deg = 5.0\n[links.uplink]\nrate_bps = 64e3\n'
    "[links.downlink]\nber = 1e-6\n[coding]\nrs_depth = 4\n[mqtt]\nport = 1884\ntls = false\n",
    '[constellation]\nisl = "none"\n[[constellation.planes]]\nkind = "walker"\ntotal = 6\n'
    "planes = 2\nphasing = 1\ninclination_deg = 53.0\naltitude_km = 550.0\n"
    '[[stations]]\nname = "Sanya"\n[daemon]\nchannel_port = 40000\nnode_port = 41000\n',
)


def _scenario_decoder(buf: bytes) -> object:
    """A scenario file: refused with ConfigError naming the key, or read into a scenario
    that has satellites and stations and a COP-1 window FARM-1 can hold."""
    try:
        text = buf.decode("utf-8")
    except UnicodeDecodeError as exc:  # as scenario.load() refuses a file
        raise ConfigError("scenario", "(file)", f"is not UTF-8 text: {exc}") from None
    sf = _scenario.loads(text, source="fuzz.toml")
    sc, up = sf.scenario, sf.emulation.uplink
    if not sc.satellites or not sc.stations:
        raise FuzzCheckError("accepted a scenario without satellites or stations")
    if not 1 <= up.fop_window <= up.farm_window // 2:
        raise FuzzCheckError(f"accepted K {up.fop_window} with W {up.farm_window}")
    return sf


def _valid_request(rng: random.Random) -> bytes:
    body: dict[str, object] = {"prompt": rng.choice(["What is 2+2?", "Summarise the pass", "é ✓"])}
    if rng.random() < 0.7:
        body["id"] = f"q{rng.randrange(10**6)}"
    if rng.random() < 0.5:
        body["target"] = f"CS-{rng.randrange(1, 13):02d}"
    if rng.random() < 0.5:
        body["stream"] = rng.random() < 0.5
    if rng.random() < 0.7:
        body["params"] = {"max_new_tokens": rng.randrange(1, 512), "temperature": 0.7}
    return json.dumps(body).encode()


def _request_decoder(buf: bytes) -> object:
    """An MQTT query request: refused with RequestError, or read into a request that
    reads back the same from its own JSON."""
    request = _mqtt.parse_request(buf)
    if not request.prompt or (request.id is not None and not _mqtt.valid_id(request.id)):
        raise FuzzCheckError(f"accepted a request without a prompt or with a bad id: {request}")
    again = _mqtt.parse_request(json.dumps(request.to_json()).encode())
    if again != request:
        raise FuzzCheckError(f"{request} reads back as {again}")
    return request


TARGETS: list[Target] = [
    Target(
        "scenario.loads",
        lambda rng: rng.choice(_SCENARIO_TEXTS).encode(),
        lambda: _scenario_decoder,
        strict=True,
        max_random_len=400,
        refusal=ConfigError,
    ),
    Target(
        "mqtt.parse_request",
        _valid_request,
        lambda: _request_decoder,
        strict=True,
        max_random_len=300,
        refusal=_mqtt.RequestError,
    ),
]
