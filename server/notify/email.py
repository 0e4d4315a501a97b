"""The e-mail (SMTP) channel: one message per alert through the site's mail server.

A channel's URL says where and to whom, its secret is the SMTP password::

    smtp://[user@]host[:port]?from=alerts@example.com&to=a@example.com,b@example.com
    smtps://[user@]host[:port]?from=...&to=...

``smtp`` (default port 587) upgrades with STARTTLS when the server offers it, or insists on
it with ``&starttls=require``; ``smtps`` (default port 465) is TLS from the first byte.
Certificates are verified against the system's CA store (``SSL_CERT_FILE`` honoured). The
password is never sent over a connection without TLS. The subject is the message title,
the body the same lines as the chat channels plus the event's link, and the event's
snapshot (when there is one) comes as the attachment ``snapshot.jpg``.
"""

from __future__ import annotations

import base64
import re
import smtplib
import ssl
import urllib.parse
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import formatdate, make_msgid
from zoneinfo import ZoneInfo

from sitewatch.server.notify.channels import (
    LABELS,
    Alert,
    SendResult,
    Target,
    message_lines,
    scrub,
)

SCHEMES = {"smtp": 587, "smtps": 465}
PARAMS = {"from", "to", "starttls"}
MAX_RECIPIENTS = 50
_ADDRESS = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$"
)


class EmailUrlError(ValueError):
    """An e-mail channel URL that cannot be used; the message says what is wrong."""


@dataclass(frozen=True)
class EmailUrl:
    implicit_tls: bool
    host: str
    port: int
    user: str | None
    sender: str
    recipients: tuple[str, ...]
    require_starttls: bool


def _address(text: str) -> str:
    address = text.strip()
    if len(address) > 254 or not _ADDRESS.match(address) or ".." in address:
        raise EmailUrlError(f"bad address {text!r}")
    return address


def parse_email_url(url: str) -> EmailUrl:
    """The parts of an ``smtp://`` / ``smtps://`` channel URL; :class:`EmailUrlError`
    naming what is wrong otherwise."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise EmailUrlError(f"bad URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise EmailUrlError("an e-mail URL starts with smtp:// or smtps://")
    if parts.password is not None:
        raise EmailUrlError("no password in the URL: put it in the channel's secret")
    host = parts.hostname
    if not host:
        raise EmailUrlError("the mail server's host is missing")
    if parts.path not in ("", "/"):
        raise EmailUrlError(f"unexpected path {parts.path!r} (use ?from=...&to=...)")
    if parts.fragment:
        raise EmailUrlError("unexpected #fragment")
    user = urllib.parse.unquote(parts.username) if parts.username else None
    try:
        query = urllib.parse.parse_qs(parts.query, keep_blank_values=True, strict_parsing=False)
    except ValueError as exc:
        raise EmailUrlError(f"bad query: {exc}") from None
    unknown = sorted(set(query) - PARAMS)
    if unknown:
        raise EmailUrlError(f"unknown parameter {unknown[0]!r} (known: from, to, starttls)")
    senders = query.get("from", [])
    if not senders or not senders[0].strip():
        raise EmailUrlError("from= is missing")
    if len(senders) > 1:
        raise EmailUrlError("from= is given more than once")
    sender = _address(senders[0])
    recipients: list[str] = []
    for value in query.get("to", []):
        for item in value.split(","):
            if item.strip():
                address = _address(item)
                if address.lower() not in {r.lower() for r in recipients}:
                    recipients.append(address)
    if not recipients:
        raise EmailUrlError("to= is missing")
    if len(recipients) > MAX_RECIPIENTS:
        raise EmailUrlError(f"more than {MAX_RECIPIENTS} addresses in to=")
    starttls = query.get("starttls", [""])
    if len(starttls) > 1 or starttls[0].lower() not in ("", "auto", "require"):
        raise EmailUrlError("starttls= is 'require' or 'auto'")
    require = starttls[0].lower() == "require"
    if require and scheme == "smtps":
        raise EmailUrlError("starttls= is for smtp://; smtps:// is TLS already")
    return EmailUrl(
        implicit_tls=scheme == "smtps",
        host=host,
        port=port or SCHEMES[scheme],
        user=user,
        sender=sender,
        recipients=tuple(recipients),
        require_starttls=require,
    )


def build_message(target: Target, alert: Alert, zone: ZoneInfo, parsed: EmailUrl) -> EmailMessage:
    """The e-mail for ``alert``: title as subject, the lines and the link as the body."""
    labels = LABELS[target.language if target.language in LABELS else "zh"]
    title, lines = message_lines(alert, target.language, zone)
    body = "\n".join([*lines, "", f"{labels['link']}: {alert.link}", ""])
    message = EmailMessage(policy=SMTP_POLICY)
    message["Subject"] = title
    message["From"] = parsed.sender
    message["To"] = ", ".join(parsed.recipients)
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid("sitewatch", domain=parsed.sender.rpartition("@")[2])
    message["X-Sitewatch-Event"] = alert.event_id
    message.set_content(body, charset="utf-8", cte="base64")  # 7-bit for any relay
    if alert.snapshot_jpeg:
        message.add_attachment(
            alert.snapshot_jpeg, maintype="image", subtype="jpeg", filename="snapshot.jpg"
        )
    return message


def _deliver(
    parsed: EmailUrl, password: str | None, message: EmailMessage, timeout_s: float
) -> dict[str, tuple[int, bytes]]:
    context = ssl.create_default_context()
    smtp: smtplib.SMTP
    if parsed.implicit_tls:
        smtp = smtplib.SMTP_SSL(parsed.host, parsed.port, timeout=timeout_s, context=context)
    else:
        smtp = smtplib.SMTP(parsed.host, parsed.port, timeout=timeout_s)
    with smtp:
        smtp.ehlo()
        tls = parsed.implicit_tls
        if not tls and smtp.has_extn("starttls"):
            smtp.starttls(context=context)
            smtp.ehlo()
            tls = True
        if not tls and parsed.require_starttls:
            raise smtplib.SMTPNotSupportedError("the server does not offer STARTTLS")
        if parsed.user is not None:
            if not password:
                raise ValueError("the URL names a user but the channel has no secret (password)")
            if not tls:
                raise smtplib.SMTPNotSupportedError(
                    "the server offers no STARTTLS: the password is not sent in clear"
                )
            smtp.login(parsed.user, password)
        return smtp.send_message(message, parsed.sender, list(parsed.recipients))


def _smtp_code(exc: Exception) -> int | None:
    code = getattr(exc, "smtp_code", None)
    if isinstance(code, int):
        return code
    if isinstance(exc, smtplib.SMTPRecipientsRefused) and exc.recipients:
        return next(iter(exc.recipients.values()))[0]
    return None


def _scrub(text: str, target: Target) -> str:
    """:func:`channels.scrub`, and the password's base64 forms (AUTH LOGIN / PLAIN) too."""
    if target.secret:
        secret = target.secret.encode()
        forms = [secret]
        try:
            user = parse_email_url(target.url).user
        except EmailUrlError:
            user = None
        if user:
            forms.append(b"\0" + user.encode() + b"\0" + secret)
        for form in forms:
            text = text.replace(base64.b64encode(form).decode(), "***")
    return scrub(text, target)


def send_email(target: Target, alert: Alert, zone: ZoneInfo, *, timeout_s: float) -> SendResult:
    """Mail ``alert`` to the channel's addresses; never raises. ``provider_code`` is the
    SMTP reply code of a refusal, the error is scrubbed of the password."""
    try:
        parsed = parse_email_url(target.url)
        message = build_message(target, alert, zone, parsed)
        refused = _deliver(parsed, target.secret, message, timeout_s)
    except Exception as exc:  # refused, unreachable, TLS, bad credentials, bad URL
        text = f"{type(exc).__name__}: {exc}"
        if isinstance(exc, smtplib.SMTPResponseException):
            raw = exc.smtp_error
            detail = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
            text = f"{type(exc).__name__}: {exc.smtp_code} {detail}"
        return SendResult(False, None, _smtp_code(exc), error=_scrub(text, target))
    if refused:  # some accepted: a retry would mail them twice
        who = ", ".join(f"{a} ({code})" for a, (code, _) in sorted(refused.items()))
        return SendResult(True, None, None, error=_scrub(f"refused: {who}", target))
    return SendResult(True, None, None)
