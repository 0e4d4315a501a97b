"""Engines, sessions and migrations for one database URL."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

logger = logging.getLogger(__name__)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _with_utc(options: str | tuple[str, ...] | None) -> str:
    """libpq ``options`` plus ``-c timezone=UTC``, so that day buckets (date()) and naive
    values are UTC whatever the server's default. Options given in the URL are kept (a
    connect argument would otherwise replace them)."""
    given = " ".join(options) if isinstance(options, tuple) else (options or "")
    return given if "timezone=" in given else f"{given} -c timezone=UTC".strip()


def make_engine(
    url: str, *, pool_size: int = 10, connect_args: dict[str, Any] | None = None
) -> Engine:
    """An engine for ``url``: SQLite gets WAL, foreign keys and a busy timeout."""
    parsed = make_url(url)
    args = dict(connect_args or {})
    if parsed.get_backend_name() == "sqlite":
        args.setdefault("check_same_thread", False)
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args=args)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if parsed.get_backend_name() == "postgresql":
        args["options"] = _with_utc(args.get("options") or parsed.query.get("options"))
    return create_engine(
        url, connect_args=args, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True
    )


def alembic_config(engine: Engine) -> Config:
    """Alembic configuration from the ini file shipped inside the package."""
    ini = resources.files("sitewatch.server") / "alembic.ini"
    config = Config(str(ini))
    config.set_main_option(
        "script_location", str(resources.files("sitewatch.server") / "migrations")
    )
    config.attributes["engine"] = engine
    return config


class Database:
    """One engine and its session factory; the app keeps one on ``app.state.db``."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sessions = sessionmaker(engine, expire_on_commit=False)

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> Database:
        return cls(make_engine(url, **kwargs))

    def migrate(self, revision: str = "head") -> None:
        """Bring the schema up to ``revision`` with Alembic."""
        logger.info("migrating database %s to %s", self.engine.url.render_as_string(), revision)
        command.upgrade(alembic_config(self.engine), revision)

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self.sessions() as db:
            yield db

    @property
    def sqlite_file(self) -> Path | None:
        """The database file of a SQLite database (None for PostgreSQL or in memory)."""
        url = self.engine.url
        if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
            return None
        return Path(url.database)

    def ping(self) -> bool:
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return True

    def dispose(self) -> None:
        self.engine.dispose()
