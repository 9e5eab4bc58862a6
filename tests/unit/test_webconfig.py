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
