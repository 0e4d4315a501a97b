"""The FastAPI application, built by :func:`create_app` from explicit settings."""

from __future__ import annotations

import importlib
import importlib.util
import logging
from functools import partial
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from sqlalchemy.exc import DBAPIError
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from sitewatch.server.api import (
    admin,
    alerts,
    auth,
    cameras,
    dashboard,
    events,
    hazards,
    ingest,
    ops,
)
from sitewatch.server.api import workers as workers_api
from sitewatch.server.api.deps import check_request_text
from sitewatch.server.db.session import Database
from sitewatch.server.faults import fault_answer
from sitewatch.server.limits import RequestGate
from sitewatch.server.media import LocalMediaStore, MediaError, MediaStore
from sitewatch.server.metrics import Metrics, MetricsMiddleware
from sitewatch.server.notify import worker as notify_worker
from sitewatch.server.security import SESSION_COOKIE, CookieSigner
from sitewatch.server.services import admin as admin_service
from sitewatch.server.services import auth as auth_service
from sitewatch.server.services.errors import ServiceError
from sitewatch.server.settings import Settings
from sitewatch.server.throttle import DatabaseLoginThrottle

logger = logging.getLogger(__name__)

#: How every command serves the app with uvicorn. uvicorn's own proxy handling would
#: believe X-Forwarded-For from 127.0.0.1; the app believes settings.trusted_proxies only.
UVICORN_OPTIONS: dict[str, Any] = {"proxy_headers": False, "server_header": False}


def create_app(
    settings: Settings, *, database: Database | None = None, store: MediaStore | None = None
) -> FastAPI:
    """A new app with its own database, media store and metrics registry.

    Runs Alembic migrations to head first when ``settings.migrate_on_start`` is set.
    """
    database = database or Database.from_url(
        settings.resolved_database_url, pool_size=settings.db_pool_size
    )
    if settings.migrate_on_start:
        database.migrate()
    # The API docs are served with their own Swagger UI / ReDoc assets: site and bureau
    # networks are often offline, and FastAPI's default pages load them from a CDN.
    app = FastAPIOffline(
        title="sitewatch server",
        version="0.1.0",
        description="Ingest from edge boxes, review of flagged events, the hazard loop.",
        dependencies=[Depends(check_request_text)],
    )
    app.state.settings = settings
    app.state.db = database
    app.state.store = store or LocalMediaStore(settings.resolved_media_dir)
    app.state.cookie_signer = CookieSigner(settings.resolved_session_secret())
    app.state.metrics = Metrics()
    app.state.login_throttle = DatabaseLoginThrottle(  # shared by every worker process
        database,
        max_failures=settings.login_max_failures,
        window_s=settings.login_window_s,
        address_max_failures=settings.login_max_failures_per_address,
    )
    modules = (ingest, auth, events, hazards, dashboard, admin, ops, workers_api, alerts, cameras)
    for module in modules:
        app.include_router(module.router)
    notify_worker.install(app, settings, database)  # delivers alerts during the lifespan
    _install_error_handlers(app)
    app.add_middleware(
        RequestGate,
        settings=settings,
        device_token_ok=partial(_device_token_ok, database),
        session_cookie_ok=partial(_session_cookie_ok, database, app.state.cookie_signer),
        cookie_name=SESSION_COOKIE,
    )
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    if settings.trusted_proxies:
        # Outermost, so the gate, the metrics and the login throttle see the client's
        # address as the trusted proxy reports it; uvicorn's own proxy handling is off.
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxies)
    if settings.enable_ui:
        _install_ui(app)
    return app


def _device_token_ok(database: Database, token: str) -> bool:
    with database.session() as db:
        return admin_service.authenticate_device(db, token=token) is not None


def _session_cookie_ok(database: Database, signer: CookieSigner, cookie: str) -> bool:
    token = signer.unsign(cookie)
    if not token:
        return False
    with database.session() as db:
        return auth_service.session_for_token(db, token=token) is not None


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def service_error(_request: Request, exc: ServiceError) -> JSONResponse:
        wait = getattr(exc, "retry_after_s", None)  # the login throttle says when
        headers = {"Retry-After": str(wait)} if wait is not None else None
        return JSONResponse({"detail": exc.message}, status_code=exc.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's own handler echoes each wrong input back, and an input it cannot
        # encode (NaN, a lone surrogate) turned the 422 into a 500: answer without it.
        errors = [
            {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": e.get("type")}
            for e in exc.errors()
        ]
        return JSONResponse({"detail": errors}, status_code=422)

    @app.exception_handler(MediaError)
    async def media_error(_request: Request, exc: MediaError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=exc.status)

    async def fault(request: Request, exc: Exception) -> Response:
        # A full disk or an unreachable database: the client retries (507 / 503).
        answer = fault_answer(exc)
        if answer is None:
            raise exc  # a bug: the 500 handler logs it with its traceback
        logger.warning("%s %s: %s: %s", request.method, request.url.path, answer.detail, exc)
        page = getattr(request.app.state, "fault_page", None)
        if page is not None and request.url.path.startswith("/ui"):
            response: Response = page(request, answer.status)
            response.headers.update(answer.headers)
            return response
        return JSONResponse(
            {"detail": answer.detail}, status_code=answer.status, headers=answer.headers
        )

    app.add_exception_handler(DBAPIError, fault)
    app.add_exception_handler(OSError, fault)


def _install_ui(app: FastAPI) -> None:
    """Mount the review UI when the ``server.ui`` package is present.

    The UI package either provides ``install(app)`` or a ``ui_router`` (then its
    ``static/`` folder, if any, is served at ``/ui/static`` under the name ``ui_static``).
    """
    if importlib.util.find_spec("sitewatch.server.ui") is None:
        logger.info("sitewatch.server.ui not installed; serving the API only")
        return
    ui = importlib.import_module("sitewatch.server.ui")
    install = getattr(ui, "install", None)
    if install is not None:
        install(app)
        return
    app.include_router(ui.ui_router)
    static = Path(str(ui.__file__)).parent / "static"
    if static.is_dir():
        app.mount("/ui/static", StaticFiles(directory=static), name="ui_static")


def app_from_env() -> FastAPI:
    """An app from SITEWATCH_* settings (and SITEWATCH_CONFIG): for
    ``uvicorn --factory server.app:app_from_env`` and multi-worker runs."""
    from sitewatch.server.logging_setup import configure_logging
    from sitewatch.server.settings import load_settings

    settings = load_settings()
    configure_logging(level=settings.log_level, json_lines=settings.log_json)
    return create_app(settings)
