"""MQTT: how ground software outside linkstack asks the ground daemon, and hears back.

The ground daemon is an MQTT client (aiomqtt) of a broker the user runs
(Mosquitto, for instance). Topics, under ``<prefix>/<ground>/`` (``mqtt.prefix``
and ``ground.name`` of the scenario; ``linkstack/mcc/`` by default):

=====================  ===  =====  ================================================
topic                  dir  QoS    payload (JSON)
=====================  ===  =====  ================================================
``query``              in   1      ``{"prompt": "...", "id": "q1", "target": "CS-07",
                                   "stream": true, "params": {"max_new_tokens": 64,
                                   "temperature": 0.0, "top_p": 1.0, "thinking":
                                   false, "seed": 0}, "client": "me", "resend":
                                   false}``; only ``prompt`` is required (no id: the
                                   daemon makes one)
``accepted/<id>``      out  1      ``{"id", "state", "t_s"}``: the query is stored;
                                   for an id seen before, its state and
                                   ``"repeated": true``
``answer/<id>``        out  1      ``{"type": "answer", "id", "text", "satellite",
                                   "prompt_tokens", "completion_tokens",
                                   "finish_reason", "backend", "model",
                                   "random_weights", "times": {"query_complete_t_s",
                                   "inference_start_t_s", "first_token_t_s",
                                   "inference_end_t_s", "answer_queued_t_s", "ttft_s",
                                   "generate_s", "tokens_per_s"}}`` or
                                   ``{"type": "error", "id", "code", "detail",
                                   "satellite"}`` (a refusal, on board or here)
``chunk/<id>``         out  0      ``{"type": "chunk", "id", "seq", "text", "t_s"}``
``timeline/<id>``      out  1      the query's timeline: its instants
                                   (``submit_t_s``, ``first_uplink_t_s``, ...,
                                   ``answer_on_ground_t_s``), ``hops`` (each with
                                   ``kind``, ``src``, ``dst``, ``start_t_s``,
                                   ``end_t_s``; null where the ground did not see
                                   it), ``legs_s`` (leg -> seconds), ``total_s``,
                                   ``in_view_at_submit``, ``relayed_at_submit``
                                   (:mod:`linkstack.runtime.report`)
``status``             out  0 (r)  links, contacts, queues (every status interval)
``counters``           out  0 (r)  the daemon's counters
``online``             out  1 (r)  ``true`` / ``false`` (the will: false)
``gateway/<sat>/up``   in   1      with ``[gateway] transport = "mqtt"``: one unit
                                   (binary: a TC frame, CLTU or Space Packet) for
                                   satellite ``<sat>``
``gateway/<sat>/down`` out  1      one unit from ``<sat>`` (TM frame, CADU or packet)
``alarm``              out  1      with ``[sdls]`` on: a frame SDLS refused, ``{"kind":
                                   "sdls_refused", "end", "reason", "detail", "t_s"}``
                                   (at most once a second per end and reason)
=====================  ===  =====  ================================================

(r): retained. ``<id>`` is the query id. A request that cannot be read gets an
error on ``answer/<id>`` if it has a usable id, and on ``<prefix>/<ground>/rejected``
otherwise.

**Each client its own topics.** A client with an MQTT user name asks on
``client/<user>/query`` and hears back on ``client/<user>/accepted/<id>``,
``answer/<id>``, ``chunk/<id>``, ``timeline/<id>`` and ``client/<user>/rejected``
(same payloads; ``status``, ``counters`` and ``online`` stay where they are). MQTT
does not tell a subscriber who published, so the ground takes the asker from the
topic, and the broker's ACL makes that true: ``linkstack broker``
(:mod:`linkstack.daemon.broker_config`) writes one where only ``<user>`` may publish
on ``client/<user>/query`` and read ``client/<user>/...``, and only the ground's user
may publish answers. The ground keys such a query ``<user>/<id>``
(:func:`scoped_id`: its id leaves room for the name), so no one can collide with
another's ids or have another's answer published again. The un-scoped topics above
are kept for open brokers (as before: anyone there reads and writes everything, and
the ground warns at start: :func:`open_broker_warning`); that ACL closes them to
every client.

Delivery: the daemon keeps a persistent session (``clean_session`` false, a fixed
client id), so queries published while it is disconnected wait at the broker; it
acknowledges a query (PUBACK) only after storing it in its SQLite queue
(:mod:`linkstack.daemon.groundqueue`); answers that arrive while the broker is away are
in that queue and are published when the daemon is connected again. The
connection is retried for ever with a backoff (``reconnect_min_s`` doubling up to
``reconnect_max_s``).

Each answer is published once per query id (:mod:`linkstack.daemon.ground`): a query
id seen before is neither run nor answered again (``accepted/<id>`` says its state,
with ``"repeated": true``); ``"resend": true`` asks for an answer already published
once more. QoS 1 is at-least-once, so a daemon or broker that fails between taking an
answer and acknowledging it can still repeat it once. The subscriber's part: a
persistent session (``clean_session`` false, a fixed client id) subscribed to
``answer/<id>`` and ``timeline/<id>`` before the query is published, keeping the
first ``answer/<id>`` of each id; the timeline comes before its answer.

``linkstack ask`` (:mod:`linkstack.daemon.ask`) is a small client of the same topics
that does so, and checks ``online`` before it asks.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import secrets
import ssl
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

import aiomqtt

from linkstack.errors import ConfigError
from linkstack.timebase import Clock
from payloads.messages import MAX_ID_LEN, Answer, AnswerChunk, ErrorMessage, Params

if TYPE_CHECKING:  # annotations only: `linkstack ask` need not import the runtime
    from linkstack.runtime.daemon_settings import MqttSettings

log = logging.getLogger("linkstack.daemon.mqtt")

MAX_PROMPT_LEN = 64 * 1024  # characters
MAX_REQUEST_LEN = 256 * 1024  # octets of JSON


@dataclass(frozen=True)
class Topics:
    """The ground's topics; with ``client`` (an MQTT user name), that client's own:
    its query and what answers it go under ``<base>/client/<client>/`` (``status``,
    ``counters`` and ``online`` stay the ground's)."""

    prefix: str
    ground: str
    client: str | None = None

    @property
    def base(self) -> str:
        return f"{self.prefix}/{self.ground}"

    @property
    def scope(self) -> str:
        """Where a query and its answers go: the client's folder, or the base."""
        return self.base if self.client is None else f"{self.base}/client/{self.client}"

    def of_client(self, client: str | None) -> Topics:
        return replace(self, client=client)

    @property
    def client_queries(self) -> str:
        """The filter the ground subscribes for every client's query topic."""
        return f"{self.base}/client/+/query"

    def client_of(self, topic: str) -> str | None:
        """The user name in a client's query topic (None: not one)."""
        head, tail = f"{self.base}/client/", "/query"
        if not (topic.startswith(head) and topic.endswith(tail)):
            return None
        name = topic[len(head) : -len(tail)]
        return name if name and "/" not in name else None

    @property
    def query(self) -> str:
        return f"{self.scope}/query"

    @property
    def rejected(self) -> str:
        return f"{self.scope}/rejected"

    def probe(self, identifier: str) -> str:
        """Where ``linkstack ask`` publishes to itself (see :mod:`linkstack.daemon.ask`)."""
        if self.client is None:
            return f"{self.base}/ask-probe/{identifier}"
        return f"{self.scope}/probe/{identifier}"

    @property
    def status(self) -> str:
        return f"{self.base}/status"

    @property
    def counters(self) -> str:
        return f"{self.base}/counters"

    @property
    def online(self) -> str:
        return f"{self.base}/online"

    def accepted(self, query_id: str) -> str:
        return f"{self.scope}/accepted/{query_id}"

    def answer(self, query_id: str) -> str:
        return f"{self.scope}/answer/{query_id}"

    def chunk(self, query_id: str) -> str:
        return f"{self.scope}/chunk/{query_id}"

    def timeline(self, query_id: str) -> str:
        return f"{self.scope}/timeline/{query_id}"


# -- requests ------------------------------------------------------------------------------


class RequestError(ValueError):
    """A query request that cannot be taken; ``query_id`` if it had a usable one."""

    def __init__(self, detail: str, query_id: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.query_id = query_id


@dataclass(frozen=True)
class Request:
    """A query as received on MQTT (``id`` None: the daemon names it)."""

    prompt: str
    id: str | None = None
    target: str | None = None
    stream: bool = False
    params: Params = field(default_factory=Params)
    client: str | None = None
    resend: bool = False  # an id already answered: publish its answer once more

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"prompt": self.prompt, "stream": self.stream}
        out["params"] = asdict(self.params)
        if self.id is not None:
            out["id"] = self.id
        if self.target is not None:
            out["target"] = self.target
        if self.client is not None:
            out["client"] = self.client
        if self.resend:
            out["resend"] = True
        return out


def valid_id(value: object, max_len: int = MAX_ID_LEN) -> bool:
    return (
        isinstance(value, str)
        and 0 < len(value) <= max_len
        and value.isprintable()
        and not any(c in value for c in "/+# ")
    )


# -- client-scoped queries ---------------------------------------------------------------------
#
# A query on a client's own topic (<base>/client/<user>/query, which the broker's ACL lets
# only <user> write: ``linkstack broker``) is that user's. The ground keys it as
# "<user>/<id>": the id the satellites see and the queue stores, unique across clients
# (an id of the un-scoped topic never holds "/"), so that no one else can collide with
# it or have its answer published again. The client sees its own id only.

MAX_USERNAME_LEN = 32  # leaves ids of up to MAX_ID_LEN - 33 characters to its queries


def valid_username(value: object) -> bool:
    """A client's user name as the ground takes it from a topic (MQTT already keeps
    '/', '+' and '#' out of one level)."""
    return (
        isinstance(value, str)
        and 0 < len(value) <= MAX_USERNAME_LEN
        and value.isprintable()
        and not any(c in value for c in "/+#: ")
    )


def max_id_len(client: str | None) -> int:
    """The longest id a client may give its queries (its user name shares the key)."""
    return MAX_ID_LEN if client is None else MAX_ID_LEN - len(client) - 1


def scoped_id(client: str | None, query_id: str) -> str:
    """The ground's key of a client's query id (the id itself for the un-scoped topic)."""
    return query_id if client is None else f"{client}/{query_id}"


def split_scoped_id(key: str) -> tuple[str | None, str]:
    """(client, the client's id) of a key :func:`scoped_id` made."""
    client, sep, query_id = key.partition("/")
    return (client, query_id) if sep else (None, key)


_PARAM_RULES: dict[str, tuple[type, float, float]] = {
    "max_new_tokens": (int, 1, 32768),
    "temperature": (float, 0.0, 2.0),
    "top_p": (float, 0.0, 1.0),
    "thinking": (bool, 0, 1),
    "seed": (int, 0, 2**32 - 1),
}


def parse_request(payload: bytes, client: str | None = None) -> Request:
    """Read a query request; :class:`RequestError` names what is wrong. ``client``: the
    user name of the client topic it came on (the request's ``client``, if it gives
    one, must be it; its id leaves room for the name: :func:`max_id_len`)."""
    if len(payload) > MAX_REQUEST_LEN:
        raise RequestError(f"the request has {len(payload)} octets, more than {MAX_REQUEST_LEN}")
    try:
        body = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RequestError(f"not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise RequestError(f"must be a JSON object, got {type(body).__name__}")
    raw_id = body.get("id")
    id_len = max_id_len(client)
    query_id = raw_id if valid_id(raw_id, id_len) else None
    if raw_id is not None and query_id is None:
        raise RequestError(
            f"id: must be 1..{id_len} printable characters without '/', '+', '#' or "
            f"spaces, got {raw_id!r}"
        )
    keys = {"id", "prompt", "target", "stream", "params", "client", "resend"}
    unknown = sorted(set(body) - keys)
    if unknown:
        raise RequestError(f"{unknown[0]}: unknown key", query_id)
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt:
        raise RequestError("prompt: a non-empty string is required", query_id)
    if len(prompt) > MAX_PROMPT_LEN:
        raise RequestError(f"prompt: longer than {MAX_PROMPT_LEN} characters", query_id)
    target = body.get("target")
    if target is not None and (not isinstance(target, str) or not target):
        raise RequestError("target: must be a satellite name or null", query_id)
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise RequestError("stream: must be true or false", query_id)
    named = body.get("client")
    if named is not None and not isinstance(named, str):
        raise RequestError("client: must be a string", query_id)
    if client is not None and named not in (None, client):
        raise RequestError(
            f"client: {named!r} is not the user name of the topic it came on ({client!r})",
            query_id,
        )
    resend = body.get("resend", False)
    if not isinstance(resend, bool):
        raise RequestError("resend: must be true or false", query_id)
    raw_params = body.get("params", {})
    if not isinstance(raw_params, dict):
        raise RequestError("params: must be an object", query_id)
    values: dict[str, Any] = {}
    for key, value in raw_params.items():
        rule = _PARAM_RULES.get(key)
        if rule is None:
            raise RequestError(f"params.{key}: unknown parameter", query_id)
        kind, lo, hi = rule
        ok = (
            isinstance(value, bool)
            if kind is bool
            else (
                not isinstance(value, bool)
                and isinstance(value, int if kind is int else int | float)
                and math.isfinite(value)
                and lo <= value <= hi
            )
        )
        if not ok:
            raise RequestError(f"params.{key}: must be a {kind.__name__} in {lo}..{hi}", query_id)
        values[key] = float(value) if kind is float else value
    if "top_p" in values and values["top_p"] <= 0:
        raise RequestError("params.top_p: must be above 0", query_id)
    who = client if client is not None else named
    return Request(prompt, query_id, target, stream, Params(**values), who, resend)


def new_query_id(prefix: str = "q") -> str:
    return f"{prefix}-{secrets.token_hex(6)}"


# -- what goes out ----------------------------------------------------------------------------


def answer_json(msg: Answer | ErrorMessage) -> dict[str, Any]:
    if isinstance(msg, Answer):
        return {"type": "answer", **asdict(msg)}
    return {"type": "error", **asdict(msg)}


def chunk_json(chunk: AnswerChunk) -> dict[str, Any]:
    return {"type": "chunk", **asdict(chunk)}


def dumps(obj: Any) -> bytes:
    return json.dumps(_finite(obj), separators=(",", ":")).encode()


def _finite(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj


# -- the connection ---------------------------------------------------------------------------


def tls_context(settings: MqttSettings) -> ssl.SSLContext | None:
    """The TLS context of the settings (None without ``tls``)."""
    if not settings.tls:
        return None
    try:
        ctx = ssl.create_default_context(cafile=settings.ca_file or None)
    except (OSError, ssl.SSLError) as exc:
        key, what = ("ca_file", repr(settings.ca_file)) if settings.ca_file else ("tls", "the CAs")
        raise ConfigError("mqtt", key, f"cannot load {what}: {exc}") from None
    if settings.cert_file:
        for key in ("cert_file", "key_file"):  # ssl's error does not say which is missing
            name = getattr(settings, key)
            if name and not os.path.isfile(name):
                raise ConfigError("mqtt", key, f"no such file: {name!r}")
        try:
            ctx.load_cert_chain(settings.cert_file, settings.key_file or None)
        except (OSError, ssl.SSLError) as exc:
            files = " and ".join(repr(f) for f in (settings.cert_file, settings.key_file) if f)
            raise ConfigError("mqtt", "cert_file", f"cannot load {files}: {exc}") from None
    if settings.tls_insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def password(settings: MqttSettings) -> str | None:
    if settings.password_file:
        return read_password_file(settings.password_file)
    if settings.password_env:
        value = os.environ.get(settings.password_env)
        if value is None:
            raise ConfigError(
                "mqtt",
                "password_env",
                f"the environment variable {settings.password_env} is not set",
            )
        return value
    return settings.password or None


def read_password_file(path: str) -> str:
    """The password in ``path`` (its first line): a file others may read is refused."""
    try:
        mode = os.stat(path).st_mode
        with open(path, encoding="utf-8") as f:
            first = f.readline().rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError("mqtt", "password_file", f"cannot read {path!r}: {exc}") from None
    if mode & 0o077:
        raise ConfigError(
            "mqtt",
            "password_file",
            f"{path!r} may be read by others (mode {mode & 0o777:03o}): chmod 600 it",
        )
    if not first:
        raise ConfigError("mqtt", "password_file", f"{path!r} has no password on its first line")
    return first


# CONNACK codes that retrying with the same settings cannot change: bad user name or
# password, not authorized (MQTT 3.1.1 and their MQTT 5 reason codes).
_REFUSED_CODES = frozenset({4, 5, 134, 135})


def refusal(exc: aiomqtt.MqttError) -> str | None:
    """What to check when the broker will not have us whatever we retry (it refused the
    user name and password, or its TLS certificate cannot be verified); None when the
    failure may pass (the broker is away, the network)."""
    code = exc.rc if isinstance(exc, aiomqtt.MqttCodeError) else None
    if getattr(code, "value", code) in _REFUSED_CODES:
        return (
            "the broker refused the user name or password (mqtt.username, mqtt.password, "
            "mqtt.password_env or mqtt.password_file; ask: --username, --password-file)"
        )
    # aiomqtt raises the TLS error as an MqttError "from None": the cause is its context
    if isinstance(exc.__context__, ssl.SSLCertVerificationError) or (
        "CERTIFICATE_VERIFY_FAILED" in str(exc)
    ):
        return (
            "the broker's TLS certificate cannot be verified (mqtt.ca_file: the CA that "
            "signed it; mqtt.tls_insecure = true skips the check)"
        )
    return None


def make_client(
    settings: MqttSettings,
    *,
    identifier: str | None,
    clean_session: bool,
    will: aiomqtt.Will | None = None,
) -> aiomqtt.Client:
    return aiomqtt.Client(
        settings.host,
        settings.port,
        username=settings.username or None,
        password=password(settings),
        identifier=identifier,
        clean_session=clean_session,
        will=will,
        keepalive=settings.keepalive_s,
        tls_context=tls_context(settings),
        timeout=10.0,
    )


ANONYMOUS_CHECK_S = 5.0  # how long the start-up check waits for the broker's answer


async def accepts_anonymous(
    settings: MqttSettings, timeout_s: float = ANONYMOUS_CHECK_S
) -> bool | None:
    """Whether the broker of ``settings`` lets in a client without a user name: it tries
    one (TLS as configured, no user name, no password). None: it could not tell (the
    broker did not answer in ``timeout_s``, or the connection failed otherwise)."""
    client = aiomqtt.Client(
        settings.host,
        settings.port,
        identifier=f"linkstack-anonymous-check-{secrets.token_hex(4)}",
        clean_session=True,
        tls_context=tls_context(settings),
        timeout=timeout_s,
    )
    try:
        async with asyncio.timeout(timeout_s):
            async with client:
                return True
    except aiomqtt.MqttError as exc:
        code = exc.rc if isinstance(exc, aiomqtt.MqttCodeError) else None
        return False if getattr(code, "value", code) in _REFUSED_CODES else None
    except (TimeoutError, OSError):
        return None


def open_broker_warning(settings: MqttSettings, anonymous: bool | None) -> str | None:
    """What the ground says at start of a broker that lets anyone in (None: nothing)."""
    how = (
        "anyone who reaches it can read every answer and timeline, ask in another's "
        "name and publish answers of its own: write a broker configuration with "
        "`linkstack broker` (README: MQTT that lets in only who belongs)"
    )
    if not settings.username:
        return f"the MQTT broker is open: this daemon connected without a user name, so {how}"
    if anonymous:
        return f"the MQTT broker accepts anonymous clients: {how}"
    return None


class MqttBridge:
    """The ground daemon's connection to the broker (see the module docstring).

    ``on_query(payload)`` is called with each message on the query topic and must
    store it before it returns (it is acknowledged to the broker after that);
    ``on_client_query(user, payload)``, if given, likewise with each message on a
    client's own query topic (``<base>/client/<user>/query``; the broker's ACL lets
    only ``<user>`` publish there);
    ``on_connected()`` runs after each (re)connection and subscription. ``extra``:
    more topic filters (QoS 1), each with its ``handler(topic, payload)``, which is
    held to the same rule (the gateway's units, :class:`~linkstack.daemon.endpoints.MqttUnits`).
    """

    def __init__(
        self,
        settings: MqttSettings,
        topics: Topics,
        clock: Clock,
        on_query: Callable[[bytes], None],
        on_connected: Callable[[], Awaitable[None]] | None = None,
        extra: Mapping[str, Callable[[str, bytes], None]] | None = None,
        on_client_query: Callable[[str, bytes], None] | None = None,
    ) -> None:
        self.settings = settings
        self.on_client_query = on_client_query
        self.anonymous: bool | None = None  # the broker lets in anonymous clients (checked once)
        self._checked_open = False
        self.extra = dict(extra or {})
        self.topics = topics
        self.clock = clock
        self.on_query = on_query
        self.on_connected = on_connected
        password(settings)  # a ConfigError now, when the daemon starts, not in run()
        tls_context(settings)
        self.identifier = settings.client_id or f"linkstack-{topics.ground}"
        self.connected = asyncio.Event()
        self.stats: Counter[str] = Counter()
        self._client: aiomqtt.Client | None = None
        self._stopping = False

    @property
    def is_connected(self) -> bool:
        return self._client is not None and self.connected.is_set()

    async def run(self) -> None:
        """Connect, subscribe, take queries; reconnect with backoff, until cancelled."""
        s = self.settings
        delay_s = s.reconnect_min_s
        while not self._stopping:
            will = aiomqtt.Will(self.topics.online, b"false", qos=1, retain=True)
            client = make_client(s, identifier=self.identifier, clean_session=False, will=will)
            paho = getattr(client, "_client", None)
            if not (hasattr(paho, "manual_ack_set") and hasattr(paho, "ack")):
                paho = None  # no manual acknowledgement: the broker gets PUBACK at once
            if paho is not None:
                paho.manual_ack_set(True)  # PUBACK once the query is stored
            try:
                async with client:
                    self._client = client
                    self.stats["connections"] += 1
                    if not self._checked_open:
                        self._checked_open = True
                        await self._warn_if_open()
                    await client.subscribe(self.topics.query, qos=1)
                    if self.on_client_query is not None:
                        await client.subscribe(self.topics.client_queries, qos=1)
                    for topic_filter in self.extra:
                        await client.subscribe(topic_filter, qos=1)
                    await client.publish(self.topics.online, b"true", qos=1, retain=True)
                    self.connected.set()
                    delay_s = s.reconnect_min_s
                    log.info(
                        "mqtt connected",
                        extra={"fields": {"broker": f"{s.host}:{s.port}", "id": self.identifier}},
                    )
                    if self.on_connected is not None:
                        await self.on_connected()
                    async for message in client.messages:
                        self._dispatch(message)
                        if paho is not None and message.qos > 0:
                            paho.ack(message.mid, message.qos)
            except aiomqtt.MqttError as exc:
                if self._stopping:
                    break
                self.stats["disconnections"] += 1
                fields = {"broker": f"{s.host}:{s.port}", "error": str(exc)}
                hint = refusal(exc)
                if hint is None:
                    log.warning(
                        "mqtt broker unreachable",
                        extra={"fields": fields | {"retry_in_s": round(delay_s, 2)}},
                    )
                else:  # still retried: the broker's configuration may change
                    log.error(
                        "mqtt connection refused",
                        extra={"fields": fields | {"check": hint, "retry_in_s": round(delay_s, 2)}},
                    )
            finally:
                self._client = None
                self.connected.clear()
            if self._stopping:
                break
            await self.clock.sleep_until(self.clock.now() + delay_s)
            delay_s = min(delay_s * 2.0, s.reconnect_max_s)

    async def _warn_if_open(self) -> None:
        """Say loudly, once, at the first connection, when the broker lets anyone in."""
        s = self.settings
        self.anonymous = True if not s.username else await accepts_anonymous(s)
        warning = open_broker_warning(s, self.anonymous)
        if warning is not None:
            self.stats["broker_open"] = 1
            log.warning(warning, extra={"fields": {"broker": f"{s.host}:{s.port}"}})

    def _dispatch(self, message: aiomqtt.Message) -> None:
        """Hand one message to its handler (before it is acknowledged)."""
        payload = message.payload
        body = payload if isinstance(payload, bytes) else str(payload or "").encode()
        user = self.topics.client_of(message.topic.value)
        if user is not None and self.on_client_query is not None:
            self.stats["client_queries_received"] += 1
            try:
                self.on_client_query(user, body)
            except Exception:  # a bad request must not drop the connection
                log.exception("mqtt: handling a query of client %r failed", user)
                self.stats["query_errors"] += 1
            return
        handler = next((h for f, h in self.extra.items() if message.topic.matches(f)), None)
        if handler is not None:
            self.stats["extra_received"] += 1
            try:
                handler(message.topic.value, body)
            except Exception:  # a bad unit must not drop the connection
                log.exception("mqtt: handling %s failed", message.topic.value)
                self.stats["extra_errors"] += 1
            return
        self.stats["queries_received"] += 1
        try:
            self.on_query(body)
        except Exception:  # a bad request must not drop the connection
            log.exception("mqtt: handling a query failed")
            self.stats["query_errors"] += 1

    async def publish(
        self, topic: str, payload: bytes, *, qos: int = 0, retain: bool = False
    ) -> bool:
        """Publish if connected; False (and nothing raised) if not, or if it failed."""
        client = self._client
        if client is None or not self.connected.is_set():
            self.stats["publish_skipped_offline"] += 1
            return False
        try:
            await client.publish(topic, payload, qos=qos, retain=retain)
        except aiomqtt.MqttError as exc:
            self.stats["publish_failed"] += 1
            log.debug("mqtt publish failed", extra={"fields": {"topic": topic, "error": str(exc)}})
            return False
        self.stats["published"] += 1
        return True

    async def close(self) -> None:
        """Say offline (retained) and stop reconnecting; the caller cancels :meth:`run`."""
        self._stopping = True
        if self._client is not None and self.connected.is_set():
            with contextlib.suppress(aiomqtt.MqttError, TimeoutError):
                await asyncio.wait_for(
                    self._client.publish(self.topics.online, b"false", qos=1, retain=True), 2.0
                )


_CANCEL_TRIES = 5  # cancellations sent to a task that goes on (see stop_tasks)
_CANCEL_WAIT_S = 1.0  # how long the first waits for the tasks to end (then 2 s, 3 s, ...)


async def stop_tasks(tasks: Iterable[asyncio.Task[Any]]) -> set[asyncio.Task[Any]]:
    """Cancel ``tasks`` and wait until they end; those that would not (none, we hope).

    A task is cancelled again if it goes on: Python 3.11's :func:`asyncio.wait_for`
    (aiomqtt waits for the broker with it) loses a cancellation that comes just as
    what it waits for arrives (a CONNACK, a SUBACK, a PUBACK), and the MQTT task then
    carries on, connected while the daemon stops, and would be waited for for ever."""
    pending = set(tasks)
    for attempt in range(_CANCEL_TRIES):
        if not pending:
            break
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=_CANCEL_WAIT_S * (attempt + 1))
    return pending
