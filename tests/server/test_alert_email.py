"""The e-mail alert channel against a real local mail server.

An aiosmtpd server on loopback checks each session as a mail server would: AUTH LOGIN or
PLAIN with the right password before MAIL FROM, STARTTLS (or implicit TLS) with a
certificate made here and trusted through ``SSL_CERT_FILE``. The mails it accepts are
parsed back: envelope, From / To / Subject (Chinese, RFC 2047 encoded), body, snapshot.
"""

from __future__ import annotations

import email
import importlib.util
import shutil
import socket
import ssl
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from sqlalchemy import select

from sitewatch.server.db.models import ChannelKind, Notification, Role
from sitewatch.server.notify.channels import Alert, Target, message_lines, send
from sitewatch.server.notify.email import EmailUrlError, parse_email_url, send_email
from sitewatch.server.notify.worker import deliver_due
from tests.server.conftest import ServerEnv, event_json, post_event

USER = "alerts@site.example"
PASSWORD = "smtp-Pa55word-9f3k"
SENDER = "sitewatch@site.example"
TO = ("safety@site.example", "foreman@site.example")
SHANGHAI = ZoneInfo("Asia/Shanghai")
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 4 + b"\xff\xd9"


# --- certificates ----------------------------------------------------------------------


def _make_cert(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 / localhost: (cert.pem, key.pem)."""
    folder.mkdir(parents=True, exist_ok=True)
    cert, key = folder / "cert.pem", folder / "key.pem"
    if importlib.util.find_spec("cryptography") is not None:
        import ipaddress

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        private = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
        now = datetime.now(UTC)
        built = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(private.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(hours=1))
            .not_valid_after(now + timedelta(days=2))
            .add_extension(
                x509.SubjectAlternativeName(
                    [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
                ),
                critical=False,
            )
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(private, hashes.SHA256())
        )
        cert.write_bytes(built.public_bytes(serialization.Encoding.PEM))
        key.write_bytes(
            private.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return cert, key
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("neither the cryptography package nor the openssl command is here")
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@dataclass(frozen=True)
class Certs:
    cert: Path
    key: Path
    #: Another self-signed certificate: trusting it instead must make TLS fail.
    other: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        return context


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    base = tmp_path_factory.mktemp("smtp-certs")
    cert, key = _make_cert(base / "server")
    other, _ = _make_cert(base / "other")
    return Certs(cert, key, other)


@pytest.fixture
def trusted(certs: Certs, monkeypatch: pytest.MonkeyPatch) -> Certs:
    """The test server's certificate as the only trusted one (ssl.create_default_context)."""
    monkeypatch.setenv("SSL_CERT_FILE", str(certs.cert))
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    return certs


# --- the mail server -------------------------------------------------------------------


@dataclass
class Mail:
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes
    login: str | None
    tls: bool

    @property
    def message(self) -> EmailMessage:
        parsed = email.message_from_bytes(self.raw, policy=default_policy)
        assert isinstance(parsed, EmailMessage)
        return parsed


def _tls(server: SMTP, session: Session) -> bool:
    """Whether the session runs over TLS: after STARTTLS or from the first byte."""
    transport = server.transport
    implicit = transport is not None and transport.get_extra_info("ssl_object") is not None
    return session.ssl is not None or implicit


@dataclass
class MailServer:
    """aiosmtpd on 127.0.0.1: what it accepted, and every AUTH it was offered."""

    mode: str  # "starttls", "smtps" or "plain"
    port: int = 0
    mails: list[Mail] = field(default_factory=list)
    auth_attempts: list[tuple[str, str, bool]] = field(default_factory=list)
    controller: Controller | None = None

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        login = session.auth_data.decode() if isinstance(session.auth_data, bytes) else None
        self.mails.append(
            Mail(
                envelope.mail_from or "",
                list(envelope.rcpt_tos),
                content,
                login,
                _tls(server, session),
            )
        )
        return "250 OK queued"

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        if mechanism not in ("LOGIN", "PLAIN") or not isinstance(data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login, password = data.login.decode(), data.password.decode()
        ok = login == USER and password == PASSWORD and _tls(server, session)
        self.auth_attempts.append((mechanism, login, ok))
        return AuthResult(success=ok, handled=False, auth_data=data.login if ok else None)

    def url(self, query: str | None = None, *, user: str | None = USER) -> str:
        scheme = "smtps" if self.mode == "smtps" else "smtp"
        who = f"{user.replace('@', '%40')}@" if user else ""
        query = query if query is not None else f"from={SENDER}&to={','.join(TO)}"
        return f"{scheme}://{who}127.0.0.1:{self.port}?{query}"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _start(server: MailServer, certs: Certs | None) -> MailServer:
    kwargs: dict[str, Any] = {"authenticator": server.authenticate}
    if server.mode == "starttls":
        assert certs is not None
        kwargs.update(tls_context=certs.server_context(), require_starttls=True)
        kwargs.update(auth_required=True)
    elif server.mode == "smtps":
        assert certs is not None
        # TLS from the first byte: aiosmtpd's auth_require_tls only knows STARTTLS.
        kwargs.update(ssl_context=certs.server_context(), auth_required=True)
        kwargs.update(auth_require_tls=False)
    else:  # no TLS at all, AUTH offered in clear: a client must not use it
        kwargs.update(auth_require_tls=False)
    server.port = _free_port()
    server.controller = Controller(
        server, hostname="127.0.0.1", port=server.port, server_hostname="127.0.0.1", **kwargs
    )
    server.controller.start()
    return server


@pytest.fixture
def mailserver(trusted: Certs) -> Iterator[MailServer]:
    server = _start(MailServer("starttls"), trusted)
    yield server
    assert server.controller is not None
    server.controller.stop()


@pytest.fixture
def smtps_server(trusted: Certs) -> Iterator[MailServer]:
    server = _start(MailServer("smtps"), trusted)
    yield server
    assert server.controller is not None
    server.controller.stop()


@pytest.fixture
def plain_server() -> Iterator[MailServer]:
    server = _start(MailServer("plain"), None)
    yield server
    assert server.controller is not None
    server.controller.stop()


def an_alert(**extra: Any) -> Alert:
    fields: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "site_id": "site-a",
        "site_name": "一号工地",
        "camera_id": "cam-1",
        "rule": "no_helmet",
        "severity": "high",
        "started_at": datetime(2026, 5, 1, 8, 0, tzinfo=UTC),
        "zone": "东区",
        "link": "http://127.0.0.1:8000/ui/events/abc",
    }
    fields.update(extra)
    return Alert(**fields)


def target(url: str, secret: str | None = PASSWORD, language: str = "zh") -> Target:
    return Target(kind=ChannelKind.EMAIL, url=url, secret=secret, language=language)


# --- the URL ---------------------------------------------------------------------------


def test_url_parts_and_defaults() -> None:
    got = parse_email_url(f"smtp://alerts%40site.example@mail.example?from={SENDER}&to=a@x.cn")
    assert (got.host, got.port, got.implicit_tls, got.require_starttls) == (
        "mail.example",
        587,
        False,
        False,
    )
    assert got.user == USER and got.sender == SENDER and got.recipients == ("a@x.cn",)
    got = parse_email_url(f"smtps://mail.example?from={SENDER}&to=a@x.cn,b@y.cn&to=c@z.cn")
    assert (got.port, got.implicit_tls, got.user) == (465, True, None)
    assert got.recipients == ("a@x.cn", "b@y.cn", "c@z.cn")
    got = parse_email_url(f"smtp://mail.example:2525?from={SENDER}&to=a@x.cn&starttls=require")
    assert got.port == 2525 and got.require_starttls


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        (f"smtp://mail.example?from={SENDER}", "to= is missing"),
        (f"smtp://mail.example?from={SENDER}&to=", "to= is missing"),
        (f"smtp://mail.example?from={SENDER}&to=a@x.cn,x", "bad address 'x'"),
        (f"smtp://mail.example?from={SENDER}&to=a b@x.cn", "bad address 'a b@x.cn'"),
        ("smtp://mail.example?to=a@x.cn", "from= is missing"),
        ("smtp://mail.example?from=nobody&to=a@x.cn", "bad address 'nobody'"),
        (f"smtp://u:{PASSWORD}@mail.example?from={SENDER}&to=a@x.cn", "no password in the URL"),
        (f"smtp://mail.example?from={SENDER}&to=a@x.cn&cc=b@x.cn", "unknown parameter 'cc'"),
        (f"smtp://mail.example:99999?from={SENDER}&to=a@x.cn", "bad URL"),
        (f"smtp://?from={SENDER}&to=a@x.cn", "host is missing"),
        (f"smtp://mail.example?from={SENDER}&to=a@x.cn&starttls=yes", "starttls="),
        (f"https://mail.example?from={SENDER}&to=a@x.cn", "smtp:// or smtps://"),
    ],
)
def test_bad_urls_say_what_is_wrong(url: str, problem: str) -> None:
    with pytest.raises(EmailUrlError) as caught:
        parse_email_url(url)
    assert problem in str(caught.value)
    assert PASSWORD not in str(caught.value)


# --- sending ---------------------------------------------------------------------------


def test_starttls_auth_and_the_message(mailserver: MailServer) -> None:
    alert = an_alert(snapshot_jpeg=JPEG)
    result = send(target(mailserver.url()), alert, SHANGHAI, timeout_s=10)
    assert result.ok and result.error is None, result.error
    (mail,) = mailserver.mails
    assert mail.tls and mail.login == USER
    assert [(m, ok) for m, _, ok in mailserver.auth_attempts] == [
        (mailserver.auth_attempts[0][0], True)
    ]
    assert mail.mail_from == SENDER and mail.rcpt_tos == list(TO)
    message = mail.message
    title, lines = message_lines(alert, "zh", SHANGHAI)
    assert title == "安全告警: 未戴安全帽"
    assert message["Subject"] == title and message["From"] == SENDER
    assert [a.addr_spec for a in message["To"].addresses] == list(TO)
    raw_subject = next(
        line for line in mail.raw.decode("ascii").splitlines() if line.startswith("Subject:")
    )
    assert "=?utf-8?" in raw_subject.lower() and "安全" not in raw_subject  # RFC 2047
    body = message.get_body(("plain",))
    assert body is not None
    text = body.get_content()
    for line in lines:
        assert line in text
    assert "时间: 2026-05-01 16:00:00" in text and "区域: 东区" in text
    assert f"查看事件: {alert.link}" in text
    (attachment,) = list(message.iter_attachments())
    assert attachment.get_content_type() == "image/jpeg"
    assert attachment.get_filename() == "snapshot.jpg"
    assert attachment.get_content() == JPEG


def test_no_snapshot_no_attachment_and_english(mailserver: MailServer) -> None:
    alert = an_alert(rule="fall_edge", test=True)
    result = send_email(target(mailserver.url(), language="en"), alert, SHANGHAI, timeout_s=10)
    assert result.ok, result.error
    message = mailserver.mails[0].message
    assert message["Subject"] == "Test message: Fall-risk edge"
    assert not message.is_multipart() and list(message.iter_attachments()) == []
    text = message.get_content()
    assert "Camera: cam-1" in text and "Severity: High" in text and "Open the event:" in text


def test_wrong_password_fails_without_the_password(mailserver: MailServer) -> None:
    wrong = "Wrong-pa55-Secret"
    result = send(target(mailserver.url(), secret=wrong), an_alert(), SHANGHAI, timeout_s=10)
    assert not result.ok and result.error
    assert result.provider_code == 535, result
    assert wrong not in result.error and PASSWORD not in result.error
    assert mailserver.mails == [] and all(not ok for _, _, ok in mailserver.auth_attempts)
    assert mailserver.auth_attempts  # it did try, with the wrong one
    # No password at all: the server refuses the mail (auth required).
    result = send(target(mailserver.url(user=None), None), an_alert(), SHANGHAI, timeout_s=10)
    assert not result.ok and result.provider_code == 530 and mailserver.mails == []


def test_certificate_is_verified(
    mailserver: MailServer, certs: Certs, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(certs.other))  # not the server's certificate
    result = send(target(mailserver.url()), an_alert(), SHANGHAI, timeout_s=10)
    assert not result.ok and result.error and "certificate" in result.error.lower()
    assert PASSWORD not in result.error
    assert mailserver.mails == [] and mailserver.auth_attempts == []


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_smtps_implicit_tls(smtps_server: MailServer) -> None:
    result = send(target(smtps_server.url()), an_alert(), SHANGHAI, timeout_s=10)
    assert result.ok, result.error
    (mail,) = smtps_server.mails
    assert mail.tls and mail.login == USER and mail.rcpt_tos == list(TO)
    assert mail.message["Subject"] == "安全告警: 未戴安全帽"


def test_no_tls_no_password_in_clear(plain_server: MailServer) -> None:
    # The server offers AUTH without TLS: the password is not sent.
    result = send(target(plain_server.url()), an_alert(), SHANGHAI, timeout_s=10)
    assert not result.ok and result.error and "STARTTLS" in result.error
    assert plain_server.auth_attempts == [] and plain_server.mails == []
    # starttls=require without a user: refused as well.
    query = f"from={SENDER}&to={TO[0]}&starttls=require"
    result = send(
        target(plain_server.url(query, user=None), None), an_alert(), SHANGHAI, timeout_s=10
    )
    assert not result.ok and result.error and "STARTTLS" in result.error
    assert plain_server.mails == []
    # A relay without TLS or login (a site's internal one): the mail goes.
    query = f"from={SENDER}&to={TO[0]}"
    result = send(
        target(plain_server.url(query, user=None), None), an_alert(), SHANGHAI, timeout_s=10
    )
    assert result.ok, result.error
    assert len(plain_server.mails) == 1 and not plain_server.mails[0].tls


def test_unreachable_server_never_raises() -> None:
    port = _free_port()
    url = f"smtp://{USER.replace('@', '%40')}@127.0.0.1:{port}?from={SENDER}&to={TO[0]}"
    result = send(target(url), an_alert(), SHANGHAI, timeout_s=2)
    assert not result.ok and result.error and PASSWORD not in result.error
    result = send(target("smtp://127.0.0.1?to=x"), an_alert(), SHANGHAI, timeout_s=2)
    assert not result.ok and result.error and "from= is missing" in result.error


# --- through the API -------------------------------------------------------------------


def _admin(server_env: ServerEnv) -> Any:
    admin = server_env.user("root", Role.ADMIN)
    server_env.site("site-a")
    return admin


def test_end_to_end_through_the_api(server_env: ServerEnv, mailserver: MailServer) -> None:
    admin = _admin(server_env)
    body = {"name": "安全员邮箱", "kind": "email", "url": mailserver.url(), "secret": PASSWORD}
    answer = admin.post("/api/v1/alerts/channels", json=body)
    assert answer.status_code == 201, answer.text
    channel = answer.json()
    assert PASSWORD not in answer.text and channel["secret_set"] is True
    assert channel["url"] == mailserver.url()  # addresses shown, no password there
    answer = admin.post("/api/v1/alerts/rules", json={"channel_id": channel["id"]})
    assert answer.status_code == 201, answer.text
    event = event_json("site-a", zone="edge-3")
    assert post_event(server_env.device("site-a"), event).status_code in (200, 201)
    done = deliver_due(server_env.database, server_env.settings)
    assert (done.sent, done.failed, done.retried) == (1, 0, 0), done.errors
    (mail,) = mailserver.mails
    assert mail.rcpt_tos == list(TO) and mail.login == USER and mail.tls
    message = mail.message
    assert message["Subject"] == "安全告警: 未戴安全帽"
    text = message.get_content()
    assert "摄像头: cam-1" in text and "2026-05-01 16:00:00" in text and "edge-3" in text
    assert f"http://127.0.0.1:8000/ui/events/{event['event_id']}" in text
    with server_env.database.session() as db:
        rows = list(db.scalars(select(Notification)))
    assert [(n.status, n.attempts) for n in rows] == [("sent", 1)]
    assert deliver_due(server_env.database, server_env.settings).claimed == 0
    assert len(mailserver.mails) == 1
    # The test button mails too, and says so.
    answer = admin.post(f"/api/v1/alerts/channels/{channel['id']}/test")
    assert answer.status_code == 200 and answer.json()["ok"] is True, answer.text
    assert len(mailserver.mails) == 2 and "测试消息" in str(mailserver.mails[1].message["Subject"])


def test_bad_email_urls_refused_by_the_api(server_env: ServerEnv) -> None:
    admin = _admin(server_env)
    good = f"smtp://mail.example?from={SENDER}&to={TO[0]}"
    for kind, url, problem in (
        ("email", f"smtp://mail.example?from={SENDER}&to=a@x.cn,x", "bad address 'x'"),
        ("email", f"smtp://mail.example?from={SENDER}", "to= is missing"),
        ("email", "https://mail.example/hook", "smtp:// or smtps://"),
        ("email", f"smtp://u:{PASSWORD}@mail.example?from={SENDER}&to=a@x.cn", "no password"),
        ("wecom", good, "http:// or https://"),
        ("webhook", "ftp://files.example/x", "pattern"),
    ):
        answer = admin.post("/api/v1/alerts/channels", json={"name": "x", "kind": kind, "url": url})
        assert answer.status_code == 422, (url, answer.text)
        assert problem in answer.text, answer.text
        assert PASSWORD not in answer.text
    assert admin.get("/api/v1/alerts/channels").json() == []
    created = admin.post(
        "/api/v1/alerts/channels", json={"name": "mail", "kind": "email", "url": good}
    )
    assert created.status_code == 201, created.text
    channel = created.json()["id"]
    for url, problem in (
        (f"smtp://mail.example?from={SENDER}&to=", "to= is missing"),
        ("https://example.com/hook", "smtp:// or smtps://"),
        (f"smtp://u:{PASSWORD}@mail.example?from={SENDER}&to=a@x.cn", "no password"),
    ):
        answer = admin.patch(f"/api/v1/alerts/channels/{channel}", json={"url": url})
        assert answer.status_code == 422 and problem in answer.text, answer.text
        assert PASSWORD not in answer.text
    assert admin.get(f"/api/v1/alerts/channels/{channel}").json()["url"] == good
    changed = good.replace(TO[0], TO[1])
    answer = admin.patch(f"/api/v1/alerts/channels/{channel}", json={"url": changed})
    assert answer.status_code == 200 and answer.json()["url"] == changed
    # A chat channel keeps refusing smtp:// on a change.
    hook = admin.post(
        "/api/v1/alerts/channels",
        json={"name": "hook", "kind": "webhook", "url": "http://127.0.0.1:9/x"},
    ).json()["id"]
    answer = admin.patch(f"/api/v1/alerts/channels/{hook}", json={"url": good})
    assert answer.status_code == 422 and "http:// or https://" in answer.text
