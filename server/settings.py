"""Server settings: environment variables (prefix ``SITEWATCH_``) over an optional YAML
file over defaults.

``SITEWATCH_DATABASE_URL`` picks the database (SQLite in the data folder by default);
``SITEWATCH_CONFIG`` (or ``load_settings(path)``) names a YAML file with the same keys.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from sitewatch.server.localtime import zone as parse_zone
from sitewatch.server.notify.queue import AlertPolicy

MIB = 1024 * 1024


class SettingsError(ValueError):
    """A settings file that cannot be read, or values that do not validate."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SITEWATCH_", extra="forbid")

    data_dir: Path = Path("sitewatch-data")
    #: SQLAlchemy URL; default ``sqlite:///<data_dir>/sitewatch.db``.
    database_url: str | None = None
    #: Folder of the local media store; default ``<data_dir>/media``.
    media_dir: Path | None = None
    #: Signs session cookies; default a random key kept in ``<data_dir>/session.key``.
    session_secret: SecretStr | None = None
    session_max_age_s: int = Field(default=12 * 3600, gt=0)
    #: Send the session cookie only over HTTPS (turn on behind TLS).
    cookie_secure: bool = False
    #: Failed logins for one user name before a pause of the window.
    login_max_failures: int = Field(default=10, ge=1)
    #: Failed logins from one client address (any user names) before a pause: higher,
    #: since a site office shares one NAT address.
    login_max_failures_per_address: int = Field(default=50, ge=1)
    login_window_s: float = Field(default=300.0, gt=0)
    max_snapshot_bytes: int = Field(default=5 * MIB, gt=0)
    max_face_bytes: int = Field(default=1 * MIB, gt=0)
    max_clip_bytes: int = Field(default=100 * MIB, gt=0)
    max_evidence_bytes: int = Field(default=10 * MIB, gt=0)
    #: Largest image (snapshot, face, evidence, enrolment photo) and clip frame, read from
    #: the header before anything is decoded: a small file may declare a huge picture.
    max_image_pixels: int = Field(default=40_000_000, gt=0)
    max_image_side: int = Field(default=12_000, gt=0)
    #: Longest clip accepted (the edge's clips last pre_s + post_s plus the event).
    max_clip_seconds: float = Field(default=600.0, gt=0)
    #: Free space kept on the media and database disks: an upload that would leave less
    #: is refused with 507 (the box retries), and /healthz answers 503 below it.
    min_free_disk_bytes: int = Field(default=100 * MIB, ge=0)
    #: One event's JSON (an event is a few hundred bytes; 64 KiB leaves room).
    max_event_bytes: int = Field(default=64 * 1024, gt=0)
    #: Any other JSON or form body (heartbeats, admin changes, review forms).
    max_form_bytes: int = Field(default=256 * 1024, gt=0)
    #: Photos in one worker enrolment (each up to max_evidence_bytes).
    max_enrol_photos: int = Field(default=10, ge=1, le=100)
    #: Event times (started_at, updated_at, ended_at) later than the server's clock by
    #: more than this are refused (422): one box with a wild clock must not put events
    #: in the year 9999 that every page of the site then has to show.
    event_max_future_s: int = Field(default=24 * 3600, ge=0)
    #: Event times older than this are refused (a box's outbox may hold events for weeks).
    event_max_age_days: int = Field(default=400, ge=1)
    #: Media of dismissed events older than this is deleted (records are kept).
    retention_days: int = Field(default=30, ge=1)
    #: Face embeddings of workers enrolled (or updated) longer ago than this are deleted.
    face_retention_days: int = Field(default=365, ge=1)
    #: Run Alembic migrations up to head when the app is built.
    migrate_on_start: bool = True
    #: Serve the review UI (``server.ui``) beside the API.
    enable_ui: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    #: Reverse proxies (addresses or networks, e.g. 10.0.0.5 or 10.0.0.0/24) whose
    #: X-Forwarded-For / X-Forwarded-Proto are believed. Empty (the default): no one's,
    #: so a client cannot pick its own address and dodge the login throttle.
    trusted_proxies: list[str] = Field(default_factory=list)
    log_json: bool = False
    log_level: str = "INFO"
    #: SQLAlchemy connection pool size for PostgreSQL.
    db_pool_size: int = Field(default=10, ge=1)
    #: IANA time zone of the reviewers: the UI shows times in it, and its local days are
    #: the days of the date filters and dashboards (storage and the API's JSON stay UTC).
    timezone: str = "Asia/Shanghai"
    #: Base address of the server as people reach it: alert messages link to
    #: ``<public_url>/ui/events/<id>``.
    public_url: str = "http://127.0.0.1:8000"
    #: Deliver alert notifications from a background thread of each server process.
    notify_worker: bool = True
    #: Seconds between the worker's looks at the notification queue.
    notify_poll_s: float = Field(default=1.0, gt=0)
    #: Sends per channel per minute (chat robots allow about 20); the rest wait.
    alert_rate_per_minute: int = Field(default=20, ge=1)
    #: Attempts per notification before it is marked failed.
    alert_max_attempts: int = Field(default=8, ge=1)
    #: Retry backoff: base * 2**(attempt - 1) seconds, at most the cap.
    alert_retry_base_s: float = Field(default=5.0, gt=0)
    alert_retry_max_s: float = Field(default=600.0, gt=0)
    #: Timeout of one request to a chat provider or webhook.
    alert_timeout_s: float = Field(default=5.0, gt=0)
    #: A worker's claim on a notification while it sends; after a crash the row is sent
    #: again once this runs out (so at least once). Keep it well above alert_timeout_s.
    alert_claim_s: float = Field(default=120.0, ge=1)
    #: A storm: after this many alerts of one site and rule to a channel within the
    #: window, the next ones wait for one digest at the window's end (0: never digest).
    alert_digest_after: int = Field(default=5, ge=0)
    alert_digest_window_s: float = Field(default=600.0, gt=0)
    #: A camera without a frame (or a box without a heartbeat) this long shows offline,
    #: and the alert channels routing its site and camera are told once per dark spell.
    camera_offline_after_s: float = Field(default=600.0, ge=30)
    #: The responsible person is reminded this long before a hazard's deadline (at most
    #: half the time given).
    alert_remind_before_h: float = Field(default=2.0, ge=0)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        parse_zone(value, "timezone (SITEWATCH_TIMEZONE)")
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _proxy_addresses(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError as exc:
                raise ValueError(
                    f"trusted_proxies: {entry!r} is not an IP address or network"
                ) from exc
        return value

    @property
    def zone(self) -> ZoneInfo:
        """The :attr:`timezone` setting as a zone."""
        return parse_zone(self.timezone)

    @property
    def alert_policy(self) -> AlertPolicy:
        return AlertPolicy(
            zone=self.zone,
            digest_after=self.alert_digest_after,
            digest_window=timedelta(seconds=self.alert_digest_window_s),
            remind_before=timedelta(hours=self.alert_remind_before_h),
        )

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'sitewatch.db').resolve()}"

    @property
    def resolved_media_dir(self) -> Path:
        return (self.media_dir or self.data_dir / "media").resolve()

    def resolved_session_secret(self) -> str:
        """The configured secret, or one generated once and kept in the data folder."""
        if self.session_secret is not None:
            return self.session_secret.get_secret_value()
        key_path = self.data_dir / "session.key"
        if key_path.exists():
            return key_path.read_text().strip()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(key)
        return key


class _FileSource(PydanticBaseSettingsSource):
    """Values from a YAML file, below environment variables in priority."""

    def __init__(self, settings_cls: type[BaseSettings], values: dict[str, Any]) -> None:
        super().__init__(settings_cls)
        self._values = values

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._values.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self._values)


def _read_settings_file(path: Path) -> dict[str, Any]:
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise SettingsError(f"cannot read settings file {path}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise SettingsError(f"settings file {path} is not valid YAML: {exc}") from exc
    if not isinstance(values, dict):
        raise SettingsError(f"settings file {path} must hold a mapping of keys to values")
    unknown = sorted(set(values) - set(Settings.model_fields))
    if unknown:
        raise SettingsError(f"settings file {path}: unknown key(s) {', '.join(unknown)}")
    return values


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Settings from keyword overrides > environment > YAML file > defaults."""
    path = config_file or (Path(p) if (p := os.environ.get("SITEWATCH_CONFIG")) else None)
    file_values = _read_settings_file(path) if path else {}

    class _Settings(Settings):
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            return (init_settings, env_settings, _FileSource(settings_cls, file_values))

    try:
        loaded = _Settings(**overrides)
    except ValidationError as exc:
        where = f" (file {path})" if path else ""
        raise SettingsError(f"invalid server settings{where}: {exc}") from exc
    return loaded
