"""--web-config FILE: TLS and basic auth for the exporter.

The file is the one Prometheus's own exporters read (exporter-toolkit's
web configuration), so a fleet that already has one for node_exporter uses
it unchanged:

    tls_server_config:
      cert_file: server.crt          # relative paths: from the file's directory
      key_file: server.key
      client_auth_type: RequireAndVerifyClientCert   # optional (mutual TLS)
      client_ca_file: clients-ca.crt
      min_version: TLS12             # the default; TLS13 allowed
    basic_auth_users:
      prometheus: $2y$10$...         # bcrypt hashes (htpasswd -nBC 10 "")

Every part is optional.  What ebpftop does not implement (http_server_config,
RequireAnyClientCert, cipher lists) is refused with one line, never
silently ignored: a scrape that seems protected but is not is worse than an
error at start-up."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import os
import ssl
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

# What ebpftop implements of exporter-toolkit's tls_server_config.
_TLS_KEYS = {"cert_file", "key_file", "client_auth_type", "client_ca_file", "min_version", "max_version"}
_CLIENT_AUTH = {
    "NoClientCert": ssl.CERT_NONE,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
# TLS 1.0 and 1.1 are refused: deprecated (RFC 8996), and OpenSSL 3 at its
# default security level would not negotiate them anyway.
_VERSIONS = {"TLS12": ssl.TLSVersion.TLSv1_2, "TLS13": ssl.TLSVersion.TLSv1_3}


class WebConfigError(ValueError):
    pass


@dataclass(frozen=True)
class WebConfig:
    cert_file: str | None = None
    key_file: str | None = None
    client_ca_file: str | None = None
    client_auth: str = "NoClientCert"
    min_version: str = "TLS12"
    max_version: str | None = None
    users: dict[str, bytes] = field(default_factory=dict)  # name -> bcrypt hash
    # the TLS context load() made: the files as they were checked at the start
    context: ssl.SSLContext | None = field(default=None, compare=False, repr=False)

    @property
    def tls(self) -> bool:
        return self.cert_file is not None

    def ssl_context(self) -> ssl.SSLContext:
        """The server's TLS context; WebConfigError when a file cannot be read."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = _VERSIONS[self.min_version]
        if self.max_version:
            ctx.maximum_version = _VERSIONS[self.max_version]
        try:
            ctx.load_cert_chain(self.cert_file, self.key_file)
        except (OSError, ssl.SSLError) as e:
            raise WebConfigError(f"cannot load the certificate {self.cert_file} and key {self.key_file}: "
                                 f"{getattr(e, 'strerror', None) or e}") from None
        ctx.verify_mode = _CLIENT_AUTH[self.client_auth]
        if self.client_ca_file:
            try:
                ctx.load_verify_locations(cafile=self.client_ca_file)
            except (OSError, ssl.SSLError) as e:
                raise WebConfigError(f"cannot load client_ca_file {self.client_ca_file}: "
                                     f"{getattr(e, 'strerror', None) or e}") from None
        return ctx


def _string(where: str, value) -> str:
    if not isinstance(value, str) or not value:
        raise WebConfigError(f"{where} must be a non-empty string")
    return value


def parse(text: str, base: Path) -> WebConfig:
    """The web config in text; relative file names are taken from base (the
    file's directory), as exporter-toolkit does."""
    import yaml

    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise WebConfigError(f"not valid YAML{where}") from None
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise WebConfigError("must be a mapping (tls_server_config, basic_auth_users)")
    unknown = sorted(str(k) for k in doc if k not in ("tls_server_config", "basic_auth_users"))
    if unknown:
        raise WebConfigError(f"{unknown[0]} is not supported by ebpftop (it reads tls_server_config and basic_auth_users)")

    def path(where: str, value) -> str:
        p = Path(_string(where, value))
        return str(p if p.is_absolute() else base / p)

    tls: dict = {}
    raw_tls = doc.get("tls_server_config")
    if raw_tls is not None:
        if not isinstance(raw_tls, dict):
            raise WebConfigError("tls_server_config must be a mapping")
        unknown = sorted(str(k) for k in raw_tls if k not in _TLS_KEYS)
        if unknown:
            raise WebConfigError(f"tls_server_config.{unknown[0]} is not supported by ebpftop "
                                 f"(it reads {', '.join(sorted(_TLS_KEYS))})")
        if "cert_file" not in raw_tls or "key_file" not in raw_tls:
            raise WebConfigError("tls_server_config needs both cert_file and key_file")
        tls["cert_file"] = path("tls_server_config.cert_file", raw_tls["cert_file"])
        tls["key_file"] = path("tls_server_config.key_file", raw_tls["key_file"])
        auth = raw_tls.get("client_auth_type", "NoClientCert")
        if not isinstance(auth, str) or auth not in _CLIENT_AUTH:
            raise WebConfigError(f"tls_server_config.client_auth_type {auth!r} is not supported "
                                 f"(one of {', '.join(_CLIENT_AUTH)})")
        tls["client_auth"] = auth
        if "client_ca_file" in raw_tls:
            tls["client_ca_file"] = path("tls_server_config.client_ca_file", raw_tls["client_ca_file"])
        elif auth != "NoClientCert":
            raise WebConfigError(f"tls_server_config.client_auth_type {auth} needs client_ca_file")
        for key in ("min_version", "max_version"):
            if key in raw_tls:
                if not isinstance(raw_tls[key], str) or raw_tls[key] not in _VERSIONS:
                    raise WebConfigError(f"tls_server_config.{key} {raw_tls[key]!r} is not supported "
                                         f"(one of {', '.join(_VERSIONS)})")
                tls[key] = raw_tls[key]
        if tls.get("max_version") and _VERSIONS[tls["max_version"]] < _VERSIONS[tls.get("min_version", "TLS12")]:
            raise WebConfigError("tls_server_config.max_version is below min_version")

    users: dict[str, bytes] = {}
    raw_users = doc.get("basic_auth_users")
    if raw_users is not None:
        if not isinstance(raw_users, dict) or not raw_users:
            raise WebConfigError("basic_auth_users must map user names to bcrypt hashes")
        for name, hashed in raw_users.items():
            name = _string("a basic_auth_users name", name)
            if ":" in name:
                raise WebConfigError(f"basic_auth_users: a user name cannot hold ':' ({name!r})")
            hashed = _string(f"basic_auth_users.{name}", hashed)
            if not (hashed.startswith(("$2a$", "$2b$", "$2y$")) and len(hashed) == 60 and hashed[4:6].isdigit()
                    and hashed[6] == "$" and 4 <= int(hashed[4:6]) <= 31):
                raise WebConfigError(f"basic_auth_users.{name} is not a bcrypt hash (make one with htpasswd -nBC 10 \"\")")
            users[name] = hashed.encode()
    return WebConfig(users=users, **tls)


def load(path: str) -> WebConfig:
    """Read and check the file, and its certificate and key: every error is
    one WebConfigError line, before anything is attached."""
    from ebpftop.watch import read_safely

    # As the config file: a regular file, not through a link, root's (or
    # the invoking user's) and writable by no one else: whoever could write
    # it could take TLS and the passwords off root's exporter.
    text = read_safely(Path(path), "web config", WebConfigError)
    if text is None:
        raise WebConfigError(f"cannot read {path}: No such file or directory")
    try:
        cfg = parse(text, Path(path).resolve().parent)
        if cfg.tls:  # the files read now: an error at start-up, not at the first scrape
            cfg = dataclasses.replace(cfg, context=cfg.ssl_context())
    except WebConfigError as e:
        raise WebConfigError(f"{path}: {e}") from None
    return cfg


class BasicAuth:
    """WSGI middleware: a request passes only with a user and password of
    basic_auth_users.

    bcrypt is slow by design (65 ms at cost 10, measured here): a password
    that checked once is remembered, as a keyed digest, so that a scrape
    every few seconds does not cost a CPU.  Passwords not remembered are
    checked one at a time, and a check waits three times as long as the
    last one took, a request before that refused unchecked: at most a
    quarter of one CPU goes to them.  (bcrypt releases the GIL: clients
    sending wrong passwords in parallel used both of this machine's CPUs.)
    A user that does not exist costs the check of the costliest hash, so
    the time taken does not tell names."""

    CACHE_MAX = 64

    def __init__(self, app, users: dict[str, bytes]):
        import bcrypt

        self.app = app
        self.users = users
        self._bcrypt = bcrypt
        self._key = os.urandom(32)
        self._good: set[bytes] = set()
        self._lock = threading.Lock()
        self._checking = threading.Lock()  # one bcrypt check at a time
        self._next_check = 0.0  # monotonic: no check before it
        cost = max(int(h[4:6]) for h in users.values()) if users else 10
        self.dummy = bcrypt.hashpw(b"not a password", bcrypt.gensalt(cost))

    def _digest(self, user: str, password: bytes) -> bytes:
        return hmac.new(self._key, user.encode() + b"\0" + password + b"\0" + self.users.get(user, b""),
                        hashlib.sha256).digest()

    def allowed(self, header: str) -> bool:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, sep, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        if not sep:
            return False
        pw = password.encode()
        digest = self._digest(user, pw)
        with self._lock:
            if digest in self._good:
                return True
        hashed = self.users.get(user)
        with self._checking:
            started = time.monotonic()
            if started < self._next_check:
                return False  # refused unchecked: checks take at most a quarter of a CPU
            try:
                ok = self._bcrypt.checkpw(pw, hashed or self.dummy) and hashed is not None
            except ValueError:  # a malformed hash (checked at load) or a NUL in the password
                ok = False
            ended = time.monotonic()
            self._next_check = ended + 3 * (ended - started)
        if ok:
            with self._lock:
                if len(self._good) >= self.CACHE_MAX:
                    self._good.clear()
                self._good.add(digest)
        return ok

    def __call__(self, environ, start_response):
        if self.allowed(environ.get("HTTP_AUTHORIZATION", "")):
            return self.app(environ, start_response)
        start_response("401 Unauthorized", [("WWW-Authenticate", 'Basic realm="ebpftop", charset="UTF-8"'),
                                            ("Content-Type", "text/plain; charset=utf-8")])
        return [b"Unauthorized\n"]
