"""``linkstack broker`` (linkstack/daemon/broker_config.py): the Mosquitto configuration
it writes, and a real Mosquitto started with it, against the real daemons.

The command runs as a user runs it (``python -m linkstack broker``); the broker is
``mosquitto -c`` the written ``mosquitto.conf``, on the scenario's port; the ground,
the satellites and the channel are real ``linkstack daemon`` processes
(tests/daemon/test_daemon_processes.py: Run); alice and bob are ``linkstack ask`` with
their user names and password files, and raw MQTT clients with the same credentials
playing the attacker. A broker that refuses a publish says nothing to a client of
MQTT 3.1.1 (it acknowledges and drops it), so each refusal is checked by what a
subscriber allowed to read the topic does not get, and by the ground's queue.

These tests need mosquitto and mosquitto_passwd (the mosquitto package): without them
they FAIL and say how to install it.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import stat
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import aiomqtt
import pytest

from linkstack.daemon.ask import ask
from linkstack.daemon.broker_config import BrokerUsers, acl_text
from linkstack.daemon.mqtt import (
    MAX_ID_LEN,
    Request,
    RequestError,
    Topics,
    parse_request,
    read_password_file,
    scoped_id,
    split_scoped_id,
    tls_context,
)
from linkstack.errors import ConfigError
from tests.daemon.test_daemon_processes import HANG_S, Run, query
from tests.daemon.test_mqtt_broker import accepts, free_tcp_port, mosquitto_path
from tests.daemon.test_mqtt_security import (  # noqa: F401 - pki: a fixture
    StandInGround,
    pki,
    settings,
    wait_for,
)

TOPICS = Topics("linkstack", "mcc")
BASE = TOPICS.base
FAKE = "SPOOFED: not from a satellite"


# -- the pieces, without a broker --------------------------------------------------------------


def test_client_topics_ids_and_requests_are_scoped_to_the_user_name():
    alice = TOPICS.of_client("alice")
    assert alice.query == f"{BASE}/client/alice/query"
    assert alice.answer("q1") == f"{BASE}/client/alice/answer/q1"
    assert alice.timeline("q1") == f"{BASE}/client/alice/timeline/q1"
    assert alice.online == TOPICS.online == f"{BASE}/online"  # the ground's, for all
    assert TOPICS.answer("q1") == f"{BASE}/answer/q1"  # the un-scoped layout is unchanged
    assert TOPICS.client_of(alice.query) == "alice"
    assert TOPICS.client_of(TOPICS.query) is None
    assert TOPICS.client_of(f"{BASE}/client/a/b/query") is None
    assert scoped_id("alice", "q1") == "alice/q1" and scoped_id(None, "q1") == "q1"
    assert split_scoped_id("alice/q1") == ("alice", "q1") and split_scoped_id("q1") == (None, "q1")
    # the user name comes from the topic; the request may name it, and only it
    assert parse_request(b'{"prompt": "x", "id": "q1"}', client="alice").client == "alice"
    assert parse_request(b'{"prompt": "x", "client": "alice"}', client="alice").client == "alice"
    with pytest.raises(RequestError, match="'bob' is not the user name of the topic"):
        parse_request(b'{"prompt": "x", "id": "q1", "client": "bob"}', client="alice")
    # the key <user>/<id> must fit the messages' id: the id leaves room for the name
    longest = "q" * (MAX_ID_LEN - len("alice/"))
    assert parse_request(f'{{"prompt": "x", "id": "{longest}"}}'.encode(), client="alice")
    with pytest.raises(RequestError, match=f"id: must be 1..{len(longest)} printable"):
        parse_request(f'{{"prompt": "x", "id": "{longest}q"}}'.encode(), client="alice")


def test_the_acl_gives_each_user_its_own_topics_and_the_ground_the_rest():
    users = BrokerUsers("ground", ("alice", "bob"), ("mc",))
    acl = acl_text(TOPICS, users).splitlines()
    assert "pattern write linkstack/mcc/client/%u/query" in acl
    assert "pattern read linkstack/mcc/client/%u/answer/+" in acl
    # no pattern lets a user write anything but its query and its own probe
    writes = [line for line in acl if line.startswith("pattern") and "write" in line.split()[1]]
    assert writes == [
        "pattern write linkstack/mcc/client/%u/query",
        "pattern readwrite linkstack/mcc/client/%u/probe/+",
    ]
    sections: dict[str, list[str]] = {}
    for line in acl:
        if line.startswith("user "):
            current = sections.setdefault(line.split()[1], [])
        elif line.startswith("topic "):
            current.append(line)
    assert sections["ground"][0] == "topic write linkstack/mcc/#"
    assert sections["alice"] == sections["bob"] == ["topic read linkstack/mcc/online"]
    assert sections["mc"] == [
        "topic read linkstack/mcc/online",
        "topic write linkstack/mcc/gateway/+/up",
        "topic read linkstack/mcc/gateway/+/down",
    ]


@pytest.mark.parametrize(
    ("users", "says"),
    [
        (("ground", ("al ice",)), "'al ice': a user name is 1..32 letters"),
        (("ground", ("a" * 33,)), "a user name is 1..32"),
        (("ground", ("a/b",)), "'a/b': a user name"),
        (("ground", ("%u",)), "'%u': a user name"),
        (("ground", ("ground",)), "'ground' is the ground's user"),
        (("ground", ()), "name at least one client"),
    ],
)
def test_unusable_user_names_are_refused_by_name(users, says):
    with pytest.raises(ConfigError, match=says):
        BrokerUsers(*users)


def test_a_password_file_must_be_private_and_hold_a_password(tmp_path):
    path = tmp_path / "pw"
    path.write_text("s3cret\nignored\n")
    path.chmod(0o600)
    assert read_password_file(str(path)) == "s3cret"
    path.chmod(0o644)
    with pytest.raises(ConfigError, match=r"may be read by others \(mode 644\): chmod 600"):
        read_password_file(str(path))
    path.write_text("\n")
    path.chmod(0o600)
    with pytest.raises(ConfigError, match="no password on its first line"):
        read_password_file(str(path))
    with pytest.raises(ConfigError, match="password_file: cannot read"):
        read_password_file(str(tmp_path / "none"))


def test_the_scenario_takes_a_password_file_and_refuses_two_passwords(tmp_path):
    from linkstack.runtime import scenario

    good = tmp_path / "good.toml"
    good.write_text('[mqtt]\nusername = "g"\npassword_file = "/x/g"\n')
    assert scenario.load(str(good)).mqtt.password_file == "/x/g"
    both = tmp_path / "both.toml"
    both.write_text('[mqtt]\nusername = "g"\npassword_file = "/x/g"\npassword = "p"\n')
    with pytest.raises(ConfigError, match="give one of password, password_env, password_file"):
        scenario.load(str(both))
    alone = tmp_path / "alone.toml"
    alone.write_text('[mqtt]\npassword_file = "/x/g"\n')
    with pytest.raises(ConfigError, match="a password needs a username"):
        scenario.load(str(alone))


# -- the command ------------------------------------------------------------------------------


def linkstack(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "linkstack", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def write_config(scenario: Path, folder: Path, *args: str) -> dict[str, str]:
    """``linkstack broker`` as a user runs it; each user's password, read from its file."""
    done = linkstack("broker", "--scenario", str(scenario), "--out", str(folder), *args)
    assert done.returncode == 0, done.stderr
    return {p.name: p.read_text().strip() for p in (folder / "passwords").iterdir()}


def test_linkstack_broker_writes_private_passwords_hashed_by_mosquitto_and_keeps_them(tmp_path):
    scenario = tmp_path / "s.toml"
    scenario.write_text(
        '[mqtt]\nhost = "127.0.0.1"\nport = 18999\nprefix = "ls"\n[ground]\nname = "gs"\n'
    )
    folder = tmp_path / "broker"
    done = linkstack(
        "broker", "--scenario", str(scenario), "--out", str(folder), "--client", "alice",
        "--client", "bob",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    passwords = {p.name: p.read_text().strip() for p in (folder / "passwords").iterdir()}
    assert sorted(passwords) == ["alice", "bob", "linkstack-ground"]
    assert all(len(p) == 32 for p in passwords.values()) and len(set(passwords.values())) == 3
    for secret in passwords.values():  # said where they are, never what they are
        assert secret not in done.stdout and secret not in done.stderr
    assert str(folder / "passwords" / "alice") in done.stdout
    assert 'password_file = "' + str(folder / "passwords" / "linkstack-ground") in done.stdout
    assert stat.S_IMODE((folder / "passwords").stat().st_mode) == 0o700
    for path in [*(folder / "passwords").iterdir(), folder / "passwd"]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    hashes = dict(line.split(":", 1) for line in (folder / "passwd").read_text().splitlines())
    assert sorted(hashes) == sorted(passwords)
    assert all(h.startswith("$7$") for h in hashes.values())  # mosquitto_passwd's PBKDF2
    conf = (folder / "mosquitto.conf").read_text().splitlines()
    assert "listener 18999 127.0.0.1" in conf and "allow_anonymous false" in conf
    assert f"acl_file {folder / 'acl'}" in conf and f"password_file {folder / 'passwd'}" in conf
    assert "pattern write ls/gs/client/%u/query" in (folder / "acl").read_text()

    # again, with carol instead of bob: alice keeps her password; bob is not let in
    done = linkstack(
        "broker", "--scenario", str(scenario), "--out", str(folder), "--client", "alice",
        "--client", "carol", "--print-passwords",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    again = {p.name: p.read_text().strip() for p in (folder / "passwords").iterdir()}
    assert again["alice"] == passwords["alice"] and "carol" in again
    assert "not let in (not named now; their password files stay): bob" in done.stdout
    assert f"password {again['carol']}" in done.stdout  # asked for
    hashes = dict(line.split(":", 1) for line in (folder / "passwd").read_text().splitlines())
    assert sorted(hashes) == ["alice", "carol", "linkstack-ground"]


def test_linkstack_broker_says_what_is_wrong(tmp_path):
    done = linkstack("broker", "--out", str(tmp_path / "b"))
    assert done.returncode == 2 and "name at least one client (--client NAME)" in done.stderr
    done = linkstack("broker", "--out", str(tmp_path / "b"), "--client", "a:b")
    assert done.returncode == 2 and "'a:b': a user name is 1..32" in done.stderr
    done = linkstack("broker", "--out", str(tmp_path / "b"), "--client", "a", "--certfile", "x")
    assert done.returncode == 2 and "TLS needs both --certfile and --keyfile" in done.stderr
    assert "Traceback" not in done.stderr


# -- a real Mosquitto with the written configuration -----------------------------------------


class ConfiguredBroker:
    """``mosquitto -c CONF``, listening on ``port`` (the scenario's)."""

    def __init__(self, conf: Path, port: int) -> None:
        self.conf, self.port = conf, port
        self.proc: subprocess.Popen | None = None
        self.log = conf.with_name("mosquitto.log")

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [mosquitto_path(), "-c", str(self.conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,  # also in its log file
        )
        deadline = time.monotonic() + 20
        while not accepts(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                said = self.log.read_text() if self.log.exists() else ""
                pytest.fail(f"mosquitto did not start with {self.conf}:\n{said}", pytrace=False)
            time.sleep(0.02)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@contextlib.contextmanager
def configured_broker(conf: Path, port: int):
    broker = ConfiguredBroker(conf, port)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


class Spy:
    """An MQTT client with a user's credentials that keeps whatever the broker lets it read."""

    def __init__(self, port: int, user: str, password: str, *filters: str) -> None:
        self.port, self.user, self.password, self.filters = port, user, password, filters
        self.seen: list[tuple[str, bytes, bool]] = []
        self._stack = contextlib.AsyncExitStack()

    async def __aenter__(self) -> Spy:
        client = aiomqtt.Client("127.0.0.1", self.port, username=self.user, password=self.password)
        await self._stack.enter_async_context(client)
        for f in self.filters:
            await client.subscribe(f, qos=1)

        async def keep() -> None:
            async for m in client.messages:
                self.seen.append((str(m.topic), bytes(m.payload), bool(m.retain)))

        task = asyncio.get_running_loop().create_task(keep())
        self._stack.callback(task.cancel)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()

    def on(self, topic: str) -> list[bytes]:
        return [payload for t, payload, _ in self.seen if t == topic]


@contextlib.asynccontextmanager
async def as_user(port: int, user: str, password: str):
    async with aiomqtt.Client("127.0.0.1", port, username=user, password=password) as c:
        yield c


async def ask_as(run: Run, user: str, folder: Path, *args: str) -> tuple[int, str, str]:
    """``linkstack ask`` as ``user``, with its password file; status, stdout, stderr."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "linkstack", "ask", "--scenario", str(run.scenario),
        "--username", user, "--password-file", str(folder / "passwords" / user),
        "--max-new-tokens", "8", "--timeout", str(HANG_S), *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), HANG_S)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def ground_rows(run: Run) -> dict[str, tuple[str, str | None, int]]:
    import sqlite3

    con = sqlite3.connect(f"file:{run.out / 'mcc-queue.sqlite'}?mode=ro", uri=True, timeout=5)
    try:
        rows = con.execute("SELECT id, state, client, submits FROM queries")
        return {i: (state, client, submits) for i, state, client, submits in rows}
    finally:
        con.close()


async def test_a_broker_configured_by_linkstack_lets_in_only_who_belongs(tmp_path):
    """The ground and two clients, alice and bob, on a Mosquitto started with what
    ``linkstack broker`` wrote: alice's query is answered to alice only; bob, reading
    ``#``, sees nothing of it; bob asking alice's id gets his own answer and nothing of
    hers; bob asking in alice's name or on the old topic, and anyone publishing on
    alice's answer topics, is dropped by the broker (``ask`` prints the satellite's
    answer, never the spoof); an anonymous client cannot connect."""
    port = free_tcp_port()
    run = Run(tmp_path, SimpleNamespace(port=port))
    folder = tmp_path / "broker"
    passwords = write_config(run.scenario, folder, "--client", "alice", "--client", "bob")
    ground_pw = folder / "passwords" / "linkstack-ground"
    run.scenario.write_text(
        run.scenario.read_text().replace(
            "[mqtt]\n", f'[mqtt]\nusername = "linkstack-ground"\npassword_file = "{ground_pw}"\n'
        )
    )
    with configured_broker(folder / "mosquitto.conf", port):
        try:
            procs = {role: run.start(role) for role in ("channel", "sat", "ground")}
            await run.ready(*procs.values())
            await attack_and_ask(run, port, folder, passwords)
            run.stop_all(*procs.values())
        finally:
            run.kill_all()
    rows = ground_rows(run)
    # the queue: alice's query and bob's, each keyed by its user; nothing else
    assert rows == {
        "alice/q-alice": ("published", "alice", 1),
        "bob/q-alice": ("published", "bob", 1),
    }, rows
    stopped = next(m for m in run.records(procs["sat"]) if m["msg"] == "stopped")
    assert stopped["counters"]["satellites"]["services"]["inferences"] == 2  # run once each
    ground_log = run.records(procs["ground"])
    assert not [m for m in ground_log if "MQTT broker" in m["msg"]], "no warning: it is closed"
    report = run.report()
    assert sorted(q["query_id"] for q in report["queries"]) == ["alice/q-alice", "bob/q-alice"]


async def attack_and_ask(run: Run, port: int, folder: Path, pw: dict[str, str]) -> None:
    alice_topics, bob_topics = TOPICS.of_client("alice"), TOPICS.of_client("bob")
    with pytest.raises(aiomqtt.MqttCodeError, match="Not authorized"):
        async with aiomqtt.Client("127.0.0.1", port):
            pass  # anonymous
    with pytest.raises(aiomqtt.MqttCodeError, match="Not authorized"):
        async with aiomqtt.Client("127.0.0.1", port, username="alice", password=pw["bob"]):
            pass
    fake = json.dumps(
        {"type": "answer", "id": "q-alice", "text": FAKE, "satellite": "CS-99"}
    ).encode()
    fake_timeline = json.dumps({"query_id": "q-alice", "legs_s": {}, "total_s": 0.0}).encode()
    async with (
        Spy(port, "bob", pw["bob"], "#") as bob_spy,
        Spy(port, "alice", pw["alice"], f"{BASE}/client/alice/#") as alice_spy,
    ):
        # spoofing: bob, and alice herself, publish answers where the ground's go
        for user in ("bob", "alice"):
            async with as_user(port, user, pw[user]) as c:
                for retain in (True, False):
                    await c.publish(alice_topics.answer("q-alice"), fake, qos=1, retain=retain)
                await c.publish(alice_topics.timeline("q-alice"), fake_timeline, qos=1)
                await c.publish(TOPICS.answer("q-alice"), fake, qos=1)
        # bob asks in alice's name, and on the un-scoped topic of open brokers
        async with as_user(port, "bob", pw["bob"]) as c:
            impostor = query("q-impostor", "In Alice's name?", client="alice")
            await c.publish(alice_topics.query, json.dumps(impostor).encode(), qos=1)
            legacy = query("q-legacy", "On the old topic?")
            await c.publish(TOPICS.query, json.dumps(legacy).encode(), qos=1)
        await asyncio.sleep(1.0)  # time for the ground to take them, were they delivered
        assert alice_spy.seen == [], alice_spy.seen  # the broker dropped every spoof

        status, out, err = await ask_as(run, "alice", folder, "--id", "q-alice", "--json",
                                        "What does Alice ask?")  # fmt: skip
        assert status == 0, err
        line = json.loads(out.splitlines()[0])
        assert line["outcome"] == "answered" and line["answer"]["id"] == "q-alice"
        assert line["answer"]["satellite"].startswith("CS-") and FAKE not in out
        assert line["timeline"]["query_id"] == "q-alice" and line["timeline"]["hops"]
        assert "warning: ignored" not in err  # nothing retained or foreign came to ask
        assert f"query q-alice -> {alice_topics.query}" in err

        # bob asks alice's id on his own topic, then asks for it to be published again
        status, out, err = await ask_as(run, "bob", folder, "--id", "q-alice", "--json",
                                        "Bob wants Alice's answer")  # fmt: skip
        assert status == 0, err
        bobs = json.loads(out.splitlines()[0])["answer"]
        assert bobs["id"] == "q-alice" and bobs["satellite"].startswith("CS-")
        async with as_user(port, "bob", pw["bob"]) as c:
            again = query("q-alice", "Once more, please", resend=True)
            await c.publish(bob_topics.query, json.dumps(again).encode(), qos=1)
        async with asyncio.timeout(HANG_S):
            while len(bob_spy.on(bob_topics.answer("q-alice"))) < 2:
                await asyncio.sleep(0.05)
        await asyncio.sleep(1.0)  # time for anything else to come

    # alice heard her answer once, from the ground (not retained), and nothing of bob's
    alice_answers = alice_spy.on(alice_topics.answer("q-alice"))
    assert len(alice_answers) == 1 and json.loads(alice_answers[0])["text"] != FAKE
    assert not any(retain for _, _, retain in alice_spy.seen)
    hers = {alice_topics.accepted("q-alice"), alice_topics.timeline("q-alice")}
    for topic, _, _ in alice_spy.seen:  # her answer, and what ask published to itself
        assert topic in hers | {alice_topics.answer("q-alice")} or (
            topic.startswith(f"{alice_topics.scope}/probe/")
        ), topic
    # bob, subscribed to everything, read the ground's online and his own topics only
    alice_text = json.loads(alice_answers[0])["text"].encode()
    for topic, payload, _ in bob_spy.seen:
        assert topic == TOPICS.online or topic.startswith(f"{bob_topics.scope}/"), topic
        assert b"alice/" not in payload and FAKE.encode() not in payload  # no key of hers
        assert len(alice_text) < 8 or alice_text not in payload
    answers = [json.loads(p) for p in bob_spy.on(bob_topics.answer("q-alice"))]
    assert answers[0] == answers[1] == bobs  # his own answer, published again for him


async def test_the_configuration_with_tls_makes_a_round_trip_for_a_client(tmp_path, pki):  # noqa: F811
    """``--certfile``/``--keyfile``: a TLS listener; alice's ``ask`` and the ground's
    bridge (a stand-in for mission control) over it, with their written passwords."""
    port = free_tcp_port()
    scenario = tmp_path / "s.toml"
    scenario.write_text(f"[mqtt]\nport = {port}\n")
    folder = tmp_path / "broker"
    pw = write_config(
        scenario, folder, "--client", "alice", "--certfile", str(pki.server_cert),
        "--keyfile", str(pki.server_key),
    )  # fmt: skip
    tls = {"tls": True, "ca_file": str(pki.ca)}
    ground = StandInGround(
        settings(port, username="linkstack-ground", password=pw["linkstack-ground"], **tls)
    )
    alice = settings(
        port, username="alice", password_file=str(folder / "passwords" / "alice"), **tls
    )
    with configured_broker(folder / "mosquitto.conf", port):
        with pytest.raises(aiomqtt.MqttCodeError, match="Not authorized"):
            async with aiomqtt.Client("127.0.0.1", port, tls_context=tls_context(alice)):
                pass  # anonymous, over TLS
        async with ground.running():
            await wait_for(lambda: ground.bridge.is_connected)
            out, err = io.StringIO(), io.StringIO()
            status = await ask(alice, "mcc", Request("over TLS?", "q-tls"), out=out, err=err)
    assert status == 0, err.getvalue()
    assert "answer from CS-01 (3 tokens, stop; m):\necho: over TLS?\n" in out.getvalue()
    assert ground.bridge.anonymous is False  # it checked, and the broker refused


async def test_a_client_that_takes_another_s_session_gets_nothing_of_it(tmp_path):
    """bob connects with the client id of alice's persistent session, which holds an
    answer for her: Mosquitto hands him the session, and checks its ACL on what it
    delivers: he gets nothing (alice, in his place, gets what her session held)."""
    port = free_tcp_port()
    scenario = tmp_path / "s.toml"
    scenario.write_text(f"[mqtt]\nport = {port}\n")
    folder = tmp_path / "broker"
    pw = write_config(scenario, folder, "--client", "alice", "--client", "bob")
    alice = TOPICS.of_client("alice")

    async def held_for(user: str, publish: str, subscribe: bool = False) -> list[str]:
        """What ``user`` gets on connecting with alice's session id, after the ground
        published an answer for alice while the session was away."""
        session = {"identifier": "alice-session", "clean_session": False}
        if subscribe:
            async with aiomqtt.Client(
                "127.0.0.1", port, username="alice", password=pw["alice"], **session
            ) as c:
                await c.subscribe(alice.answer("+"), qos=1)
        async with as_user(port, "linkstack-ground", pw["linkstack-ground"]) as ground:
            await ground.publish(alice.answer(publish), b'{"for": "alice"}', qos=1)
        got: list[str] = []
        async with aiomqtt.Client(
            "127.0.0.1", port, username=user, password=pw[user], **session
        ) as c:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.5):
                    async for m in c.messages:
                        got.append(str(m.topic))
        return got

    with configured_broker(folder / "mosquitto.conf", port):
        assert await held_for("alice", "q-1", subscribe=True) == [alice.answer("q-1")]
        assert await held_for("bob", "q-2") == []
