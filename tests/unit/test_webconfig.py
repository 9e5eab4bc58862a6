"""--web-config: the exporter over TLS (and mutual TLS) with basic auth, served
for real on loopback and scraped with urllib; the file's errors as one line."""

from __future__ import annotations

import base64
import socket
import ssl
import time
import urllib.error
import urllib.request
from pathlib import Path

import bcrypt
import pytest

from ebpftop import cli, exporter, webconfig
from ebpftop.webconfig import WebConfigError
from tests.tls import make_certs

HASH = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(4)).decode()  # cost 4: these tests check logic, not strength


@pytest.fixture(scope="module")
def certs(tmp_path_factory) -> Path:
    return make_certs(tmp_path_factory.mktemp("certs"))


def _registry():
    from prometheus_client import CollectorRegistry, Counter

    registry = CollectorRegistry()
    Counter("ebpftop_test_scrapes", "A counter to find in the scrape.", registry=registry).inc(7)
    return registry


def _client(certs: Path, with_cert: bool = False) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(certs / "ca.crt"))
    if with_cert:
        ctx.load_cert_chain(certs / "client.crt", certs / "client.key")
    return ctx


def _get(url: str, ctx=None, auth: tuple[str, str] | None = None) -> tuple[int, str]:
    req = urllib.request.Request(url)
    if auth:
        req.add_header("Authorization", "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode())
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("WWW-Authenticate", "")


def _serve(tmp_path: Path, text: str):
    path = tmp_path / "web.yml"
    path.write_text(text)
    web = webconfig.load(str(path))
    server = exporter.serve(_registry(), ("127.0.0.1", 0), web)
    return server, server.server_address[1]


def test_tls_with_basic_auth_serves_only_the_right_password(tmp_path, certs):
    server, port = _serve(tmp_path, f"tls_server_config:\n  cert_file: {certs}/server.crt\n  key_file: {certs}/server.key\n"
                                    f"basic_auth_users:\n  prom: {HASH}\n")
    url = f"https://127.0.0.1:{port}/metrics"
    try:
        status, body = _get(url, _client(certs), ("prom", "s3cret"))
        assert status == 200 and "ebpftop_test_scrapes_total 7.0" in body
        assert _get(url, _client(certs)) == (401, 'Basic realm="ebpftop", charset="UTF-8"')
        assert _get(url, _client(certs), ("prom", "wrong"))[0] == 401
        assert _get(url, _client(certs), ("nobody", "s3cret"))[0] == 401
        assert _get(url, _client(certs), ("prom:s3cret", ""))[0] == 401
        with pytest.raises((urllib.error.URLError, ConnectionError)):  # plain HTTP to the TLS port: no answer
            urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5)
        with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):  # a client that trusts other CAs
            urllib.request.urlopen(url, context=ssl.create_default_context(), timeout=5)
    finally:
        server.shutdown()
        server.server_close()


def test_a_password_is_checked_with_bcrypt_once_then_remembered(tmp_path, certs, monkeypatch):
    calls = []
    real = bcrypt.checkpw
    monkeypatch.setattr(bcrypt, "checkpw", lambda pw, h: calls.append(pw) or real(pw, h))
    server, port = _serve(tmp_path, f"basic_auth_users:\n  prom: {HASH}\n")
    try:
        for _ in range(5):
            assert _get(f"http://127.0.0.1:{port}/metrics", auth=("prom", "s3cret"))[0] == 200
        assert _get(f"http://127.0.0.1:{port}/metrics", auth=("prom", "s3cret!"))[0] == 401
        time.sleep(0.1)  # past the pause after a check (below)
        assert _get(f"http://127.0.0.1:{port}/metrics", auth=("prom", "s3cret!"))[0] == 401
    finally:
        server.shutdown()
        server.server_close()
    assert calls == [b"s3cret", b"s3cret!", b"s3cret!"]  # a wrong password is never remembered


def test_mutual_tls_refuses_a_client_without_a_certificate(tmp_path, certs):
    server, port = _serve(tmp_path, "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
                                    f"  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: {certs}/ca.crt\n"
                                    .replace("server.", f"{certs}/server."))
    url = f"https://127.0.0.1:{port}/metrics"
    try:
        assert _get(url, _client(certs, with_cert=True))[0] == 200
        with pytest.raises((urllib.error.URLError, ConnectionError, ssl.SSLError)):
            _get(url, _client(certs))
    finally:
        server.shutdown()
        server.server_close()


def test_a_client_that_never_says_hello_does_not_stop_the_scrapes(tmp_path, certs):
    """The handshake runs in the connection's thread: prometheus_client's own
    server does it where connections are accepted, and one silent client
    there stops every scrape until it goes."""
    server, port = _serve(tmp_path, f"tls_server_config:\n  cert_file: {certs}/server.crt\n  key_file: {certs}/server.key\n")
    silent = [socket.create_connection(("127.0.0.1", port)) for _ in range(3)]
    try:
        time.sleep(0.2)  # accepted, each in its handshake
        status, body = _get(f"https://127.0.0.1:{port}/metrics", _client(certs))
        assert status == 200 and "ebpftop_test_scrapes_total" in body
    finally:
        for s in silent:
            s.close()
        server.shutdown()
        server.server_close()


def test_relative_paths_are_taken_from_the_files_directory(tmp_path):
    cfg = webconfig.parse("tls_server_config:\n  cert_file: a.crt\n  key_file: /k/b.key\n  min_version: TLS13\n", tmp_path)
    assert (cfg.cert_file, cfg.key_file, cfg.min_version, cfg.users) == (str(tmp_path / "a.crt"), "/k/b.key", "TLS13", {})
    assert webconfig.parse("", tmp_path) == webconfig.WebConfig()  # an empty file: neither TLS nor auth


@pytest.mark.parametrize("text, message", [
    ("- a\n- b\n", "must be a mapping"),
    ("tls_server_config: [\n", "not valid YAML (line 2)"),
    ("http_server_config:\n  http2: false\n", "http_server_config is not supported by ebpftop"),
    ("tls_server_config:\n  cert_file: a\n", "needs both cert_file and key_file"),
    ("tls_server_config:\n  cert_file: a\n  key_file: b\n  cipher_suites: [x]\n", "tls_server_config.cipher_suites is not supported"),
    ("tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: RequireAnyClientCert\n", "'RequireAnyClientCert' is not supported"),
    ("tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: RequireAndVerifyClientCert\n", "needs client_ca_file"),
    ("tls_server_config:\n  cert_file: a\n  key_file: b\n  min_version: TLS10\n", "min_version 'TLS10' is not supported"),
    ("tls_server_config:\n  cert_file: a\n  key_file: b\n  min_version: TLS13\n  max_version: TLS12\n", "max_version is below min_version"),
    ("basic_auth_users:\n  prom: plaintext\n", "basic_auth_users.prom is not a bcrypt hash"),
    ("basic_auth_users: {}\n", "basic_auth_users must map user names to bcrypt hashes"),
    (f"basic_auth_users:\n  'a:b': {HASH}\n", "cannot hold ':'"),
    ("basic_auth_users:\n  prom: $2y$99$" + "a" * 53 + "\n", "basic_auth_users.prom is not a bcrypt hash"),
    ("tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: [x]\n", "client_auth_type ['x'] is not supported"),
    ("tls_server_config:\n  cert_file: a\n  key_file: b\n  min_version: {a: 1}\n", "min_version {'a': 1} is not supported"),
    ("tls_server_config:\n  cert_file: [a]\n  key_file: b\n", "cert_file must be a non-empty string"),
])
def test_a_bad_web_config_is_one_line(tmp_path, text, message):
    with pytest.raises(WebConfigError, match=None) as e:
        webconfig.parse(text, tmp_path)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_the_cli_refuses_a_bad_web_config_in_one_line_before_anything_starts(tmp_path, capsys, certs):
    (tmp_path / "web.yml").write_text("tls_server_config:\n  cert_file: missing.crt\n  key_file: missing.key\n")
    assert cli.main(["--prometheus", "9999", "--web-config", str(tmp_path / "web.yml")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "error: --web-config" in err and "cannot load the certificate" in err
    assert cli.main(["--prometheus", "9999", "--web-config", str(tmp_path / "absent.yml")]) == 2
    assert "cannot read" in capsys.readouterr().err
    assert cli.main(["--prometheus", "9999", "--web-config", "/dev/null"]) == 2  # a character device: never read
    assert "not a regular file" in capsys.readouterr().err
    # a key that does not go with the certificate
    (tmp_path / "mixed.yml").write_text(f"tls_server_config:\n  cert_file: {certs}/server.crt\n  key_file: {certs}/client.key\n")
    assert cli.main(["--prometheus", "9999", "--web-config", str(tmp_path / "mixed.yml")]) == 2
    assert "cannot load the certificate" in capsys.readouterr().err


def test_web_config_needs_prometheus(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["--json", "--web-config", "/etc/ebpftop/web.yml"])
    assert e.value.code == 2 and "--web-config needs --prometheus" in capsys.readouterr().err


def test_an_empty_web_config_is_refused_never_served_unprotected(capsys):
    assert cli.main(["--prometheus", "9999", "--web-config", ""]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "error: --web-config" in err


def test_a_web_config_others_may_write_is_refused(tmp_path, capsys):
    """Whoever could write it could take TLS and the passwords off root's exporter."""
    path = tmp_path / "web.yml"
    path.write_text(f"basic_auth_users:\n  prom: {HASH}\n")
    path.chmod(0o664)
    assert cli.main(["--prometheus", "9999", "--web-config", str(path)]) == 2
    assert "writable by no one else" in capsys.readouterr().err
    link = tmp_path / "link.yml"
    link.symlink_to(path)
    path.chmod(0o600)
    assert cli.main(["--prometheus", "9999", "--web-config", str(link)]) == 2
    assert "symbolic link" in capsys.readouterr().err


def test_web_config_in_the_config_file_is_for_the_exporter_only(tmp_path, capsys):
    """Set in config.toml, it must not stop the TUI, --json or a replay."""
    from ebpftop.recording import Recorder
    from tests.unit.snapshots import sample_snapshot

    rec = tmp_path / "rec.jsonl"
    r = Recorder(rec)
    r.write(sample_snapshot())
    r.close()
    conf = tmp_path / "config.toml"
    conf.write_text('web-config = "/etc/ebpftop/web.yml"\n')
    assert cli.main(["--config", str(conf), "--replay", str(rec), "--json"]) == 0
    assert capsys.readouterr().out.count("\n") == 1


def test_an_unknown_user_costs_the_costliest_hash(tmp_path):
    """The time a wrong password takes must not tell whether the user exists."""
    users = {"cheap": bcrypt.hashpw(b"a", bcrypt.gensalt(4)), "dear": bcrypt.hashpw(b"b", bcrypt.gensalt(6))}
    auth = webconfig.BasicAuth(None, users)
    assert auth.dummy[4:6] == b"06"


def test_wrong_passwords_are_checked_one_at_a_time(monkeypatch):
    """bcrypt releases the GIL: parallel wrong passwords would use every CPU."""
    import threading

    running, most = [0], [0]
    guard = threading.Lock()
    real = bcrypt.checkpw

    def counting(pw, h):
        with guard:
            running[0] += 1
            most[0] = max(most[0], running[0])
        try:
            time.sleep(0.05)
            return real(pw, h)
        finally:
            with guard:
                running[0] -= 1

    monkeypatch.setattr(bcrypt, "checkpw", counting)
    auth = webconfig.BasicAuth(None, {"prom": HASH.encode()})
    header = "Basic " + base64.b64encode(b"prom:wrong").decode()
    threads = [threading.Thread(target=auth.allowed, args=(header,)) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert most[0] == 1


def test_connections_are_capped_and_closed_at_their_deadline(monkeypatch, capfd):
    """A client trickling a byte at a time passes the idle timeout; the
    deadline closes it.  Past the cap, a connection is closed at once."""
    import threading

    monkeypatch.setattr(exporter, "MAX_CONNECTIONS", 3)
    monkeypatch.setattr(exporter, "CONNECTION_DEADLINE_S", 1.5)
    server = exporter.serve(_registry(), ("127.0.0.1", 0))
    port = server.server_address[1]
    held = []
    try:
        held = [socket.create_connection(("127.0.0.1", port)) for _ in range(3)]
        for s in held:
            s.sendall(b"GET /metrics HTTP/1.0\r\n")  # and never the blank line
        time.sleep(0.3)
        extra = socket.create_connection(("127.0.0.1", port))
        extra.settimeout(5)
        assert extra.recv(100) == b""  # closed at once: the three hold every slot
        extra.close()
        started = time.monotonic()
        for s in held:  # a byte every 0.2 s: never idle, closed by the deadline
            s.settimeout(0.2)
            while True:
                try:
                    if s.recv(100) == b"":
                        break
                except TimeoutError:
                    pass
                try:
                    s.sendall(b"X")
                except OSError:
                    break
                assert time.monotonic() - started < 10, "a trickling connection outlived its deadline"
        deadline = time.monotonic() + 5
        while threading.active_count() > 3 and time.monotonic() < deadline:  # main, serve_forever, the deadline's
            time.sleep(0.05)
        status, body = _get(f"http://127.0.0.1:{port}/metrics")  # the slots are free again
        assert status == 200 and "ebpftop_test_scrapes_total" in body
    finally:
        for s in held:
            s.close()
        server.shutdown()
        server.server_close()
    assert "Traceback" not in capfd.readouterr().err


def test_checks_of_passwords_not_remembered_take_at_most_a_quarter_of_a_cpu(monkeypatch):
    """After a check, none for three times as long as it took: a request
    then is refused unchecked.  A remembered password is not held up."""
    calls = []
    real = bcrypt.checkpw
    monkeypatch.setattr(bcrypt, "checkpw", lambda pw, h: calls.append(pw) or real(pw, h))
    hashed = bcrypt.hashpw(b"right", bcrypt.gensalt(8))  # about 15 ms a check
    auth = webconfig.BasicAuth(None, {"prom": hashed})

    def header(pw: str) -> str:
        return "Basic " + base64.b64encode(f"prom:{pw}".encode()).decode()

    assert auth.allowed(header("right"))
    time.sleep(0.3)  # past the pause that check set
    assert not auth.allowed(header("wrong"))  # checked, 15 ms: no check for the next 45 ms
    assert not auth.allowed(header("right!"))  # refused unchecked
    assert auth.allowed(header("right"))  # remembered: no check, no wait
    assert calls == [b"right", b"wrong"]
    time.sleep(0.3)
    assert not auth.allowed(header("right!"))
    assert calls == [b"right", b"wrong", b"right!"]
