"""linkstack.daemon.mqtt with a broker that wants a password, or TLS, or a client certificate.

Each test starts a real Mosquitto broker (:mod:`tests.daemon.test_mqtt_broker`) configured
for what it checks: ``allow_anonymous false`` with a password file made by
``mosquitto_passwd``, or a TLS listener with certificates made at test time by the
``openssl`` command (a CA, a server certificate for 127.0.0.1 and localhost, a
client certificate). The ground daemon's side is the real :class:`MqttBridge` with a
stand-in for mission control that answers every query through the bridge; the
client is the real :func:`ask`.

These tests need mosquitto, mosquitto_passwd (in the mosquitto package) and openssl.
Without one of them they FAIL and say how to install it: a skipped check would look
like a pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import aiomqtt
import pytest

from linkstack.daemon.ask import ask
from linkstack.daemon.mqtt import (
    MqttBridge,
    Request,
    Topics,
    answer_json,
    dumps,
    parse_request,
    password,
    tls_context,
)
from linkstack.errors import ConfigError
from linkstack.runtime import clock as clk
from linkstack.runtime.scenario import MqttSettings
from payloads.messages import Answer
from tests.daemon.test_mqtt_broker import INSTALL_HINT, running_broker

TOPICS = Topics("linkstack", "mcc")
USER, SECRET = "ground", "s3cret-Pass"

OPENSSL_HINT = (
    "openssl (the command that makes the test certificates) is not installed. Install it: "
    "`sudo apt-get install openssl` on Debian/Ubuntu (`make test` does it by itself when "
    "run as root), `dnf install openssl` on Fedora, `brew install openssl` on macOS; then "
    "run the tests again."
)


def tool(name: str, hint: str) -> str:
    exe = shutil.which(name)
    if exe is not None:
        return exe
    for folder in ("/usr/bin", "/usr/sbin", "/usr/local/bin", "/opt/homebrew/bin"):
        candidate = Path(folder) / name
        if candidate.is_file():
            return str(candidate)
    pytest.fail(hint, pytrace=False)


def run_tool(*args: str, cwd: Path) -> None:
    proc = subprocess.run(args, check=False, cwd=cwd, capture_output=True, text=True, timeout=30)
    if proc.returncode != 0:
        pytest.fail(
            f"{' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}", pytrace=False
        )


# -- certificates ----------------------------------------------------------------------------

# The whole openssl configuration (nothing read from the system's openssl.cnf). The
# key identifiers and key usages make the certificates acceptable to a strict
# verifier (Python 3.13 sets VERIFY_X509_STRICT by default).
OPENSSL_CNF = """\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""


@dataclass(frozen=True)
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A CA; a server certificate (127.0.0.1, localhost) and a client one it signed."""
    openssl = tool("openssl", OPENSSL_HINT)
    d = tmp_path_factory.mktemp("pki")
    (d / "openssl.cnf").write_text(OPENSSL_CNF)
    new_key = "-config openssl.cnf -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
    run_tool(
        openssl,
        *f"req -x509 {new_key} -extensions ca -keyout ca.key -out ca.crt -days 2".split(),
        *("-subj", "/CN=linkstack test CA"),
        cwd=d,
    )
    for name, cn, serial in (("server", "localhost", "0x1001"), ("client", USER, "0x1002")):
        run_tool(
            openssl,
            *f"req -new {new_key} -keyout {name}.key -out {name}.csr -subj /CN={cn}".split(),
            cwd=d,
        )
        run_tool(
            openssl,
            *f"x509 -req -in {name}.csr -CA ca.crt -CAkey ca.key -set_serial {serial}".split(),
            *f"-days 2 -extfile openssl.cnf -extensions {name} -out {name}.crt".split(),
            cwd=d,
        )
    return Pki(d / "ca.crt", d / "server.crt", d / "server.key", d / "client.crt", d / "client.key")


# -- brokers ---------------------------------------------------------------------------------


@pytest.fixture
def auth_broker(tmp_path: Path):
    """No anonymous clients; one user, USER with the password SECRET."""
    passwd = tool("mosquitto_passwd", INSTALL_HINT)
    folder = tmp_path / "broker"
    folder.mkdir()
    run_tool(passwd, "-c", "-b", str(folder / "passwd"), USER, SECRET, cwd=folder)
    with running_broker(
        folder, allow_anonymous=False, options=f"password_file {folder / 'passwd'}"
    ) as b:
        yield b


def tls_listener(pki: Pki, *, client_certificate: bool = False) -> str:
    lines = [f"cafile {pki.ca}", f"certfile {pki.server_cert}", f"keyfile {pki.server_key}"]
    if client_certificate:
        lines.append("require_certificate true")
    return "\n".join(lines)


@pytest.fixture
def tls_broker(tmp_path: Path, pki: Pki):
    with running_broker(tmp_path / "broker", listener_options=tls_listener(pki)) as b:
        yield b


@pytest.fixture
def mtls_broker(tmp_path: Path, pki: Pki):
    """TLS, and only clients with a certificate the CA signed."""
    listener = tls_listener(pki, client_certificate=True)
    with running_broker(tmp_path / "broker", listener_options=listener) as b:
        yield b


# -- the ground's side and the client's -------------------------------------------------------


def settings(port: int, **kw) -> MqttSettings:
    return MqttSettings(port=port, reconnect_min_s=0.1, reconnect_max_s=0.4, **kw)


async def wait_for(predicate, timeout_s: float = 10.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not predicate():
            await asyncio.sleep(0.02)


class StandInGround:
    """The ground daemon's MQTT side: the real bridge, and for mission control a
    stand-in that answers each query ``echo: <prompt>`` (answer, then timeline)."""

    def __init__(self, s: MqttSettings) -> None:
        self.bridge = MqttBridge(
            s, TOPICS, clk.WallClock(), self.on_query, on_client_query=self.on_client_query
        )
        self.prompts: list[str] = []
        self._answering: set[asyncio.Task[None]] = set()

    def on_query(self, payload: bytes) -> None:
        self.on_client_query(None, payload)

    def on_client_query(self, user: str | None, payload: bytes) -> None:
        """A client's query answered on that client's topics (``ask`` with a user name)."""
        req = parse_request(payload, client=user)
        self.prompts.append(req.prompt)
        topics = TOPICS.of_client(user)
        task = asyncio.get_running_loop().create_task(
            self._answer(topics, req.id or "?", req.prompt)
        )
        self._answering.add(task)
        task.add_done_callback(self._answering.discard)

    async def _answer(self, topics: Topics, qid: str, prompt: str) -> None:
        answer = Answer(qid, f"echo: {prompt}", 2, 3, "stop", "tiny", "m", False, "CS-01")
        assert await self.bridge.publish(topics.answer(qid), dumps(answer_json(answer)), qos=1)
        timeline = {"query_id": qid, "legs_s": {"uplink": 0.01, "generation": 0.02}}
        timeline["total_s"] = 0.03
        assert await self.bridge.publish(topics.timeline(qid), dumps(timeline), qos=1)

    @contextlib.asynccontextmanager
    async def running(self):
        task = asyncio.get_running_loop().create_task(self.bridge.run())
        try:
            yield self
        finally:
            await self.bridge.close()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def assert_round_trip(s: MqttSettings, prompt: str) -> None:
    """The bridge connects, takes the query ``ask`` sends, and ``ask`` prints the answer."""
    ground = StandInGround(s)
    async with ground.running():
        await wait_for(lambda: ground.bridge.is_connected)
        out, err = io.StringIO(), io.StringIO()
        status = await ask(s, "mcc", Request(prompt), timeout_s=10, out=out, err=err)
    assert status == 0, err.getvalue()
    assert ground.prompts == [prompt]
    text = out.getvalue()
    assert f"answer from CS-01 (3 tokens, stop; m):\necho: {prompt}\n" in text
    assert "uplink 10.0 ms, generation 20.0 ms  =  30.0 ms" in text
    assert ground.bridge.stats["connections"] == 1 and ground.bridge.stats["disconnections"] == 0


async def refusals(s: MqttSettings, caplog: pytest.LogCaptureFixture) -> list[str]:
    """Run a bridge the broker will not have: it keeps trying (with its backoff), does
    not crash, and logs each refusal as an error; what it logged."""
    bridge = MqttBridge(s, TOPICS, clk.WallClock(), lambda payload: None)
    with caplog.at_level(logging.WARNING, logger="linkstack.daemon.mqtt"):
        task = asyncio.get_running_loop().create_task(bridge.run())
        try:
            await wait_for(lambda: bridge.stats["disconnections"] >= 3 or task.done())
            assert not task.done(), "the bridge stopped instead of retrying"
            assert not bridge.is_connected and bridge.stats["connections"] == 0
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    records = [r for r in caplog.records if r.name == "linkstack.daemon.mqtt"]
    assert len(records) >= 3, [r.getMessage() for r in records]
    said = []
    for r in records:
        assert r.levelno == logging.ERROR, r.getMessage()
        fields = r.fields  # type: ignore[attr-defined]
        assert fields["broker"] == f"127.0.0.1:{s.port}" and fields["retry_in_s"] > 0
        said.append(f"{r.getMessage()}: {fields['error']}; {fields['check']}")
    return said


async def ask_refused(s: MqttSettings) -> tuple[int, str]:
    """``ask`` against a broker that will not have it: its status and what it said. It
    gives up at once (retrying cannot help), not at its timeout."""
    out, err = io.StringIO(), io.StringIO()
    loop = asyncio.get_running_loop()
    start = loop.time()
    status = await ask(s, "mcc", Request("anyone?", "ask-refused"), timeout_s=20, out=out, err=err)
    assert loop.time() - start < 5.0
    assert out.getvalue() == ""
    said = err.getvalue()
    topic = TOPICS.of_client(s.username or None).query
    assert said.startswith(f"query ask-refused -> {topic}\n"), said
    assert "Traceback" not in said and "retrying" not in said, said
    return status, said


# -- user name and password ------------------------------------------------------------------


async def test_the_right_user_name_and_password_make_a_round_trip(auth_broker):
    with pytest.raises(aiomqtt.MqttCodeError, match="Not authorized"):
        async with aiomqtt.Client("127.0.0.1", auth_broker.port):
            pass  # the broker really wants a password
    await assert_round_trip(
        settings(auth_broker.port, username=USER, password=SECRET), "with a password?"
    )


async def test_a_wrong_password_is_refused_and_the_bridge_says_why_and_retries(auth_broker, caplog):
    reasons = await refusals(settings(auth_broker.port, username=USER, password="nope"), caplog)
    for reason in reasons:
        assert reason.startswith("mqtt connection refused: [code:135] Not authorized;")
        assert "mqtt.username, mqtt.password, mqtt.password_env or mqtt.password_file" in reason


async def test_ask_with_a_wrong_password_says_why_and_fails(auth_broker):
    status, said = await ask_refused(settings(auth_broker.port, username=USER, password="nope"))
    assert status == 2
    assert f"broker 127.0.0.1:{auth_broker.port}: [code:135] Not authorized; " in said
    assert "refused the user name or password" in said


async def test_password_env_reads_the_password_from_the_environment(auth_broker, monkeypatch):
    monkeypatch.setenv("LINKSTACK_TEST_MQTT_PASSWORD", SECRET)
    s = settings(
        auth_broker.port,
        username=USER,
        password="ignored",
        password_env="LINKSTACK_TEST_MQTT_PASSWORD",
    )
    assert password(s) == SECRET
    await assert_round_trip(s, "password from the environment?")


async def test_an_unset_password_env_is_a_config_error_naming_it(monkeypatch):
    monkeypatch.delenv("LINKSTACK_TEST_MQTT_UNSET", raising=False)
    s = settings(1883, username=USER, password_env="LINKSTACK_TEST_MQTT_UNSET")
    with pytest.raises(ConfigError) as info:
        password(s)
    assert info.value.field == "password_env" and "LINKSTACK_TEST_MQTT_UNSET" in str(info.value)
    with pytest.raises(ConfigError, match="password_env"):  # when the daemon starts
        MqttBridge(s, TOPICS, clk.WallClock(), lambda payload: None)


# -- an open broker, said loudly at start -------------------------------------------------------


@pytest.fixture
def half_open_broker(tmp_path: Path):
    """USER with SECRET, and anonymous clients let in too."""
    passwd = tool("mosquitto_passwd", INSTALL_HINT)
    folder = tmp_path / "broker"
    folder.mkdir()
    run_tool(passwd, "-c", "-b", str(folder / "passwd"), USER, SECRET, cwd=folder)
    with running_broker(
        folder, allow_anonymous=True, options=f"password_file {folder / 'passwd'}"
    ) as b:
        yield b


async def warnings_at_start(s: MqttSettings, caplog: pytest.LogCaptureFixture) -> list[str]:
    """What the bridge warns of, once connected to the broker of ``s``."""
    bridge = MqttBridge(s, TOPICS, clk.WallClock(), lambda payload: None)
    with caplog.at_level(logging.WARNING, logger="linkstack.daemon.mqtt"):
        task = asyncio.get_running_loop().create_task(bridge.run())
        try:
            await wait_for(lambda: bridge.is_connected)
        finally:
            await bridge.close()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


async def test_the_ground_warns_when_the_broker_lets_in_anonymous_clients(half_open_broker, caplog):
    said = await warnings_at_start(
        settings(half_open_broker.port, username=USER, password=SECRET), caplog
    )
    assert len(said) == 1 and said[0].startswith(
        "the MQTT broker accepts anonymous clients: anyone who reaches it can read every answer"
    ), said
    assert "`linkstack broker`" in said[0]


async def test_the_ground_warns_that_a_broker_it_joins_without_a_user_name_is_open(
    half_open_broker, caplog
):
    said = await warnings_at_start(settings(half_open_broker.port), caplog)
    assert len(said) == 1 and said[0].startswith(
        "the MQTT broker is open: this daemon connected without a user name"
    ), said


async def test_no_warning_when_the_broker_refuses_anonymous_clients(auth_broker, caplog):
    said = await warnings_at_start(
        settings(auth_broker.port, username=USER, password=SECRET), caplog
    )
    assert said == []


# -- TLS -------------------------------------------------------------------------------------


async def test_tls_with_the_ca_makes_a_round_trip(tls_broker, pki):
    await assert_round_trip(settings(tls_broker.port, tls=True, ca_file=str(pki.ca)), "over TLS?")


async def test_tls_without_the_ca_fails_verification_and_says_so(tls_broker, caplog):
    s = settings(tls_broker.port, tls=True)  # the system's trust: not our CA
    for reason in await refusals(s, caplog):
        assert reason.startswith("mqtt connection refused: [SSL: CERTIFICATE_VERIFY")
        assert "certificate verify failed" in reason and "mqtt.ca_file" in reason
    status, said = await ask_refused(s)
    assert status == 2
    assert f"broker 127.0.0.1:{tls_broker.port}: [SSL: CERTIFICATE_VERIFY_FAILED]" in said
    assert "certificate cannot be verified (mqtt.ca_file" in said


async def test_tls_insecure_connects_without_verifying(tls_broker):
    await assert_round_trip(settings(tls_broker.port, tls=True, tls_insecure=True), "unverified?")


async def test_a_missing_ca_file_is_a_config_error_naming_it(tmp_path):
    s = settings(8883, tls=True, ca_file=str(tmp_path / "no-such-ca.crt"))
    with pytest.raises(ConfigError) as info:
        tls_context(s)
    assert info.value.field == "ca_file" and "no-such-ca.crt" in str(info.value)
    with pytest.raises(ConfigError, match="ca_file"):  # when the daemon starts
        MqttBridge(s, TOPICS, clk.WallClock(), lambda payload: None)


async def test_a_missing_client_certificate_or_key_is_a_config_error_naming_it(tmp_path, pki):
    s = settings(8883, tls=True, cert_file=str(tmp_path / "no-cert.pem"))
    with pytest.raises(ConfigError) as info:
        tls_context(s)
    assert info.value.field == "cert_file" and "no-cert.pem" in str(info.value)
    s = settings(
        8883, tls=True, cert_file=str(pki.client_cert), key_file=str(tmp_path / "no-key.pem")
    )
    with pytest.raises(ConfigError) as info:
        tls_context(s)
    assert info.value.field == "key_file" and "no-key.pem" in str(info.value)
    s = settings(8883, tls=True, cert_file=str(pki.client_cert), key_file=str(pki.server_key))
    with pytest.raises(ConfigError) as info:  # not the certificate's key
        tls_context(s)
    assert info.value.field == "cert_file" and "KEY_VALUES_MISMATCH" in str(info.value)


async def test_a_client_certificate_is_required_and_accepted(mtls_broker, pki, caplog):
    s = settings(
        mtls_broker.port,
        tls=True,
        ca_file=str(pki.ca),
        cert_file=str(pki.client_cert),
        key_file=str(pki.client_key),
    )
    await assert_round_trip(s, "with a client certificate?")
    # Without one: in TLS 1.3 the broker says so after the handshake, and paho-mqtt
    # (under aiomqtt, logger "mqtt") logs it at once; the bridge does not crash (its
    # attempt ends at aiomqtt's 10 s connect timeout, longer than this test waits).
    without = settings(mtls_broker.port, tls=True, ca_file=str(pki.ca))
    bridge = MqttBridge(without, TOPICS, clk.WallClock(), lambda payload: None)
    with caplog.at_level(logging.WARNING):
        task = asyncio.get_running_loop().create_task(bridge.run())
        try:
            await wait_for(lambda: "certificate required" in caplog.text or task.done(), 5.0)
            assert not task.done() and not bridge.is_connected
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    assert bridge.stats["connections"] == 0
    assert "TLSV13_ALERT_CERTIFICATE_REQUIRED" in caplog.text, caplog.text


# -- the command line ------------------------------------------------------------------------


def test_linkstack_ask_says_what_is_wrong_and_fails_without_a_traceback(auth_broker, tmp_path):
    """``linkstack ask`` as a user runs it, with the [mqtt] table of a scenario file."""
    env = {k: v for k, v in os.environ.items() if k != "LINKSTACK_TEST_MQTT_UNSET"}
    cases = {
        "wrong password": f'port = {auth_broker.port}\nusername = "{USER}"\npassword = "nope"',
        "unset password_env": f'username = "{USER}"\npassword_env = "LINKSTACK_TEST_MQTT_UNSET"',
        "missing ca_file": f'tls = true\nca_file = "{tmp_path / "no-such-ca.crt"}"',
    }
    procs = {}
    for name, table in cases.items():
        scenario = tmp_path / f"{name.replace(' ', '-')}.toml"
        scenario.write_text(f"[mqtt]\n{table}\n")
        cmd = [sys.executable, "-m", "linkstack", "ask", "--scenario", str(scenario)]
        procs[name] = subprocess.Popen(
            [*cmd, "--timeout", "20", "hello?"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
    said = {}
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=15)
        assert proc.returncode == 2 and out == "" and "Traceback" not in err, (name, err)
        said[name] = err
    assert (
        f"broker 127.0.0.1:{auth_broker.port}: [code:135] Not authorized; "
        in (said["wrong password"])
    )
    assert (
        "linkstack ask: mqtt: password_env: the environment variable LINKSTACK_TEST_MQTT_UNSET "
        "is not set" in said["unset password_env"]
    )
    assert "linkstack ask: mqtt: ca_file: cannot load " in said["missing ca_file"]
