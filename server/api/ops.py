"""Operations: health check and Prometheus metrics."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy.exc import SQLAlchemyError

logger = logging.getLogger(__name__)
router = APIRouter(tags=["operations"])


@router.get("/healthz", responses={503: {}})
def healthz(request: Request) -> JSONResponse:
    """200 when the database answers and the disks have ``min_free_disk_bytes`` free,
    503 otherwise; the body says which, with each disk's free bytes."""
    settings = request.app.state.settings
    body: dict[str, object] = {"status": "ok", "database": "ok"}
    try:
        request.app.state.db.ping()
    except SQLAlchemyError as exc:
        logger.warning("health check: database unreachable: %s", exc)
        body.update(status="error", database="unreachable")
    disks = _disks(request)
    body["disk"] = disks
    if any(disk["free_bytes"] < settings.min_free_disk_bytes for disk in disks.values()):
        logger.warning(
            "health check: disk space under %d bytes: %s", settings.min_free_disk_bytes, disks
        )
        body["status"] = "error"
    return JSONResponse(body, status_code=200 if body["status"] == "ok" else 503)


def _disks(request: Request) -> dict[str, dict[str, int]]:
    """Free and total bytes of the media folder's disk (and the SQLite file's)."""
    folders = {"media": Path(request.app.state.settings.resolved_media_dir)}
    sqlite_file = request.app.state.db.sqlite_file
    if sqlite_file is not None:
        folders["database"] = sqlite_file.parent
    disks = {}
    for name, folder in folders.items():
        usage = shutil.disk_usage(folder)
        disks[name] = {"free_bytes": usage.free, "total_bytes": usage.total}
    return disks


@router.get("/metrics", response_class=Response)
def metrics(request: Request) -> Response:
    """Prometheus text format."""
    return Response(request.app.state.metrics.render(), media_type=CONTENT_TYPE_LATEST)
