"""``linkstack broker``: a Mosquitto configuration that lets in only who belongs.

For a scenario, it writes into a folder:

- ``mosquitto.conf``: one listener on the scenario's ``mqtt.host`` and ``mqtt.port``
  (TLS with ``--certfile``/``--keyfile``), no anonymous clients, the password file
  and the ACL below, persistence in ``data/`` (the ground's and the clients'
  persistent sessions survive a broker restart);
- ``passwd``: the users' password hashes, made by Mosquitto's own ``mosquitto_passwd``
  (``-U`` over a plain file of mode 600: no hashing here, and no password on a
  command line, where ``ps`` would show it);
- ``passwords/<user>``: each user's password (mode 600, in a folder of mode 700),
  made with :mod:`secrets`; one already there is kept, so that adding a client
  later changes no one else's;
- ``acl``: who may publish and read what (:func:`acl_text`).

Topics (:class:`~linkstack.daemon.mqtt.Topics`), under ``<prefix>/<ground>/``:
every user may publish its queries on ``client/<user>/query`` only, and read only
what answers them (``client/<user>/accepted|answer|chunk|timeline/+`` and
``client/<user>/rejected``; Mosquitto's ``%u`` patterns), and the ground's
``online``; the ground's user alone may publish anything under the base, and reads
the clients' query topics. The ground takes the asker's name from the topic, which
only that user can write: no one can ask in another's name, read another's answers,
have them published again, or publish an answer. The un-scoped ``query`` and
``answer/<id>`` topics, for open brokers, are closed to every client by this ACL.
``--gateway USER`` lets a user use the packet bridge too (publish
``gateway/+/up``, read ``gateway/+/down``).
"""

from __future__ import annotations

import argparse
import os
import pwd
import re
import secrets
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from linkstack.daemon.mqtt import MAX_USERNAME_LEN, Topics
from linkstack.errors import ConfigError

PASSWORD_BYTES = 24  # 192 bits, as 32 URL-safe characters
USER_NAME = re.compile(rf"[A-Za-z0-9][A-Za-z0-9_.-]{{0,{MAX_USERNAME_LEN - 1}}}")
DEFAULT_GROUND_USER = "linkstack-ground"
PASSWD_HINT = (
    "mosquitto_passwd (in Debian's and Ubuntu's mosquitto package, which `make tools` "
    "installs) is not on PATH: install Mosquitto"
)


@dataclass(frozen=True)
class BrokerUsers:
    """Who the broker lets in: the ground's user, the clients, and which of them (or
    which other users) may use the packet bridge."""

    ground: str
    clients: tuple[str, ...]
    gateway: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for option, names in (
            ("--ground-user", (self.ground,)),
            ("--client", self.clients),
            ("--gateway", self.gateway),
        ):
            for name in names:
                if not USER_NAME.fullmatch(name):
                    raise ConfigError(
                        "broker",
                        option,
                        f"{name!r}: a user name is 1..{MAX_USERNAME_LEN} letters, digits, "
                        "'_', '.' or '-', beginning with a letter or digit",
                    )
        if self.ground in self.clients or self.ground in self.gateway:
            raise ConfigError(
                "broker",
                "--client",
                f"{self.ground!r} is the ground's user: name clients otherwise",
            )
        if not self.clients and not self.gateway:
            raise ConfigError("broker", "--client", "name at least one client (--client NAME)")

    @property
    def all(self) -> tuple[str, ...]:
        """Every user, once, the ground first."""
        return tuple(dict.fromkeys((self.ground, *self.clients, *self.gateway)))


@dataclass(frozen=True)
class BrokerFiles:
    """What :func:`write_broker_config` wrote."""

    folder: Path
    conf: Path
    passwd: Path
    acl: Path
    passwords: dict[str, Path]  # user -> its password file
    new_users: tuple[str, ...]  # whose password was made now (the others kept theirs)
    left_out: tuple[str, ...] = ()  # password files of users not named: not let in


def acl_text(topics: Topics, users: BrokerUsers) -> str:
    """Mosquitto's ACL (its ``acl_file`` format) for ``users`` on ``topics``."""
    base, mine = topics.base, f"{topics.base}/client/%u"
    lines = [
        f"# linkstack broker: who may publish and read what under {base}/",
        "# (the ground's user publishes everything there; each user its own queries)",
        "",
        "# every user: its own query topic, and only what answers it (%u: its user name)",
        f"pattern write {mine}/query",
        f"pattern readwrite {mine}/probe/+",
        *(f"pattern read {mine}/{kind}/+" for kind in ("accepted", "answer", "chunk", "timeline")),
        f"pattern read {mine}/rejected",
        "",
        "# the ground daemon: reads the queries, publishes answers, status and its will",
        f"user {users.ground}",
        f"topic write {base}/#",
        f"topic read {topics.client_queries}",
        f"topic read {base}/query",
        f"topic read {base}/gateway/+/up",
    ]
    for user in users.all[1:]:
        lines += ["", f"user {user}", f"topic read {base}/online"]
        if user in users.gateway:  # the packet bridge: units up, units down
            lines += [f"topic write {base}/gateway/+/up", f"topic read {base}/gateway/+/down"]
    return "\n".join(lines) + "\n"


def conf_text(
    host: str,
    port: int,
    folder: Path,
    *,
    run_as: str,
    certfile: str = "",
    keyfile: str = "",
    cafile: str = "",
) -> str:
    """``mosquitto.conf`` for the files in ``folder`` (absolute paths)."""
    lines = [
        "# written by linkstack broker: start with  mosquitto -c " + str(folder / "mosquitto.conf"),
        "per_listener_settings false",
        f"listener {port} {host}",
    ]
    if certfile:
        lines += [f"certfile {certfile}", f"keyfile {keyfile}"]
        if cafile:
            lines.append(f"cafile {cafile}")
    lines += [
        "allow_anonymous false",
        f"password_file {folder / 'passwd'}",
        f"acl_file {folder / 'acl'}",
        "persistence true",
        f"persistence_location {folder / 'data'}/",
        "# started as root, mosquitto becomes this user: the one that owns these files",
        f"user {run_as}",
        "log_dest stderr",
        f"log_dest file {folder / 'mosquitto.log'}",
    ]
    return "\n".join(lines) + "\n"


def mosquitto_passwd() -> str:
    exe = shutil.which("mosquitto_passwd")
    if exe is None:
        for folder in ("/usr/bin", "/usr/local/bin", "/opt/homebrew/bin"):
            if (Path(folder) / "mosquitto_passwd").is_file():
                return str(Path(folder) / "mosquitto_passwd")
        raise ConfigError("broker", "mosquitto_passwd", PASSWD_HINT)
    return exe


def _write_private(path: Path, text: str) -> None:
    """``text`` into a new file of mode 600 (never readable by others, not for a moment)."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def _password_of(path: Path) -> str | None:
    """The password kept in ``path`` (None: there is none to keep)."""
    if not path.is_file():
        return None
    if path.stat().st_mode & 0o077:
        raise ConfigError("broker", str(path), "may be read by others: chmod 600 it, or remove it")
    value = path.read_text(encoding="utf-8").split("\n", 1)[0]
    return value or None


def _hashed(users: dict[str, str], passwd: Path) -> None:
    """The password file of ``users`` (name -> password) made by mosquitto_passwd."""
    exe = mosquitto_passwd()
    with tempfile.TemporaryDirectory(prefix=".passwd-", dir=passwd.parent) as tmp:
        plain = Path(tmp) / "passwd"
        _write_private(plain, "".join(f"{u}:{p}\n" for u, p in users.items()))
        try:
            done = subprocess.run(
                [exe, "-U", str(plain)], capture_output=True, text=True, timeout=60, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ConfigError("broker", "mosquitto_passwd", f"{exe}: {exc}") from None
        hashed = plain.read_text(encoding="utf-8")
        if done.returncode != 0 or any(
            line.split(":", 1)[1] == users[line.split(":", 1)[0]]
            for line in hashed.splitlines()
            if ":" in line
        ):
            said = (done.stderr or done.stdout).strip()
            raise ConfigError("broker", "mosquitto_passwd", f"{exe} -U failed: {said}")
        os.chmod(plain, 0o600)
        os.replace(plain, passwd)


def write_broker_config(
    folder: Path,
    topics: Topics,
    host: str,
    port: int,
    users: BrokerUsers,
    *,
    certfile: str = "",
    keyfile: str = "",
    cafile: str = "",
    run_as: str | None = None,
) -> BrokerFiles:
    """Write the configuration (see the module docstring) into ``folder``."""
    if bool(certfile) != bool(keyfile):
        raise ConfigError("broker", "--certfile", "TLS needs both --certfile and --keyfile")
    folder = folder.resolve()
    secrets_dir = folder / "passwords"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        secrets_dir.mkdir(mode=0o700, exist_ok=True)
        os.chmod(secrets_dir, 0o700)
        (folder / "data").mkdir(exist_ok=True)
        passwords: dict[str, str] = {}
        files: dict[str, Path] = {}
        new: list[str] = []
        for user in users.all:
            path = secrets_dir / user
            value = _password_of(path)
            if value is None:
                value = secrets.token_urlsafe(PASSWORD_BYTES)
                _write_private(path, value + "\n")
                new.append(user)
            passwords[user], files[user] = value, path
        passwd = folder / "passwd"
        _hashed(passwords, passwd)
        acl = folder / "acl"
        acl.write_text(acl_text(topics, users), encoding="utf-8")
        conf = folder / "mosquitto.conf"
        owner = run_as or pwd.getpwuid(os.geteuid()).pw_name
        tls = {"certfile": certfile, "keyfile": keyfile, "cafile": cafile}
        tls = {k: str(Path(v).resolve()) if v else "" for k, v in tls.items()}
        conf.write_text(conf_text(host, port, folder, run_as=owner, **tls), encoding="utf-8")
    except OSError as exc:
        raise ConfigError("broker", str(folder), f"cannot write it: {exc}") from None
    kept = (p.name for p in secrets_dir.iterdir() if not p.name.startswith("."))
    left_out = tuple(sorted(name for name in kept if name not in files))
    return BrokerFiles(folder, conf, passwd, acl, files, tuple(new), left_out)


# -- the command ---------------------------------------------------------------------------


def add_broker_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "broker",
        help="write a Mosquitto configuration that lets in only the ground and named clients",
        description="Write mosquitto.conf, a password file (made by mosquitto_passwd) and an "
        "ACL for a scenario into a folder: no anonymous clients; each client may publish its "
        "queries on <prefix>/<ground>/client/<user>/query and read only what answers them; "
        "only the ground's user publishes answers. Passwords are generated, written to "
        "FOLDER/passwords/<user> (mode 600) and kept when the command runs again. Start the "
        "broker with: mosquitto -c FOLDER/mosquitto.conf",
    )
    p.add_argument("--scenario", help="scenario file (its [mqtt] host, port, prefix; ground name)")
    p.add_argument("--out", default="broker", help="the folder to write (default: ./broker)")
    p.add_argument(
        "--client",
        action="append",
        default=[],
        metavar="NAME",
        help="a client's user name (repeatable)",
    )
    p.add_argument(
        "--gateway",
        action="append",
        default=[],
        metavar="NAME",
        help="a user that may also use the packet bridge: publish gateway/+/up, read "
        "gateway/+/down (repeatable; made a user if not a --client)",
    )
    p.add_argument(
        "--ground-user",
        help=f"the ground daemon's user name (default: the scenario's mqtt.username, or "
        f"{DEFAULT_GROUND_USER})",
    )
    p.add_argument("--certfile", default="", help="TLS: the broker's certificate (PEM)")
    p.add_argument("--keyfile", default="", help="TLS: its private key (PEM)")
    p.add_argument("--cafile", default="", help="TLS: a CA for client certificates (optional)")
    p.add_argument(
        "--run-as",
        help="the user mosquitto becomes when started as root (default: you, who own the files)",
    )
    p.add_argument(
        "--print-passwords",
        action="store_true",
        help="print each user's password on stdout too (default: only where it is)",
    )
    p.set_defaults(func=_cmd_broker)


def _cmd_broker(args: argparse.Namespace) -> int:
    from linkstack.runtime import scenario as scenario_file  # noqa: PLC0415

    settings = scenario_file.load(args.scenario) if args.scenario else scenario_file.load_default()
    mqtt = settings.mqtt
    users = BrokerUsers(
        args.ground_user or mqtt.username or DEFAULT_GROUND_USER,
        tuple(dict.fromkeys(args.client)),
        tuple(dict.fromkeys(args.gateway)),
    )
    topics = Topics(mqtt.prefix, settings.ground.name)
    files = write_broker_config(
        Path(args.out),
        topics,
        mqtt.host,
        mqtt.port,
        users,
        certfile=args.certfile,
        keyfile=args.keyfile,
        cafile=args.cafile,
        run_as=args.run_as,
    )
    print(f"wrote {files.conf}, {files.passwd} (mosquitto_passwd) and {files.acl}")
    kept = [u for u in files.passwords if u not in files.new_users]
    print(
        f"passwords (mode 600): made for {', '.join(files.new_users) or 'nobody'}; "
        f"kept for {', '.join(kept) or 'nobody'}"
    )
    for user, path in files.passwords.items():
        role = "ground" if user == users.ground else "client"
        print(f"  {role:<6} {user:<20} {path}")
        if args.print_passwords:
            print(f"         password {path.read_text(encoding='utf-8').strip()}")
    if files.left_out:
        print(f"not let in (not named now; their password files stay): {', '.join(files.left_out)}")
    ground_pw = files.passwords[users.ground]
    print(f"start the broker:    mosquitto -c {files.conf}")
    print("the ground's scenario, [mqtt]:")
    print(f'  username = "{users.ground}"')
    print(f'  password_file = "{ground_pw}"')
    if users.clients:
        who = users.clients[0]
        scenario = f"--scenario {args.scenario} " if args.scenario else ""
        print(
            f"ask as {who}:  linkstack ask {scenario}--username {who} --password-file "
            f'{files.passwords[who]} "..."'
        )
    return 0
