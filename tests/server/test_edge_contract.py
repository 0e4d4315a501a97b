"""The real edge uploader (edge/outbox.py + edge/uploader.py) against the real server
app over HTTP (uvicorn in a thread): the ingest contract of COMMON.md, both ends real."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sitewatch.contract.events import Event, EventPhase, RuleKind
from sitewatch.edge.outbox import Outbox
from sitewatch.edge.uploader import Outcome, Uploader, UploadTuning
from sitewatch.server.db.models import Role
from sitewatch.server.services import admin
from tests.server.conftest import ServerEnv
from tests.server.live_server import serving

FAST = UploadTuning(retry_min_s=0.05, retry_max_s=0.2, heartbeat_s=0.2)


def spool(outbox: Outbox, site_id: str, jpeg: bytes, mp4: bytes) -> Event:
    start = datetime.now(UTC)
    event = Event(site_id=site_id, camera_id="cam-1", rule=RuleKind.NO_HELMET, started_at=start)
    outbox.put_event(event)
    outbox.put_media_bytes(str(event.event_id), "snapshot", "snapshot.jpg", jpeg)
    outbox.put_media_bytes(str(event.event_id), "clip", "clip.mp4", mp4)
    end = {"phase": EventPhase.END, "ended_at": start + timedelta(seconds=3)}
    outbox.put_event(event.model_copy(update=end))
    return event


def test_edge_uploader_against_the_real_server(
    server_env: ServerEnv, tmp_path: Path, jpeg_bytes: bytes, mp4_bytes: bytes
) -> None:
    server_env.site("site-a")
    with server_env.database.session() as db:
        token = admin.create_device(db, actor=None, site_id="site-a", name="edge-1").token
    outbox = Outbox(tmp_path / "spool", max_bytes=10**7)
    results: list[str] = []
    ours = [spool(outbox, "site-a", jpeg_bytes, mp4_bytes) for _ in range(2)]
    foreign = spool(outbox, "site-b", jpeg_bytes, mp4_bytes)  # a misconfigured site id
    with serving(server_env.app) as url:
        uploader = Uploader(
            outbox,
            base_url=url,
            token=token,
            timeout_s=5.0,
            tuning=FAST,
            heartbeat_body=lambda: {"cameras": [], "queue_depth": outbox.depth(), "version": "t"},
            on_result=lambda _item, outcome: results.append(outcome),
        )
        uploader.start()
        try:
            assert uploader.drain(30)
            resent = spool(outbox, "site-a", jpeg_bytes, mp4_bytes)
            for item_event in (resent, ours[0]):  # a lost ack: the same event again
                outbox.put_event(item_event)
            assert uploader.drain(30)
            assert uploader.heartbeat()
        finally:
            uploader.stop()
    outbox.close()

    reviewer = server_env.user("rev", Role.REVIEWER, ["site-a"])
    listed = reviewer.get("/api/v1/events", params={"page_size": 50}).json()
    stored = {e["event_id"]: e for e in listed["items"]}
    assert set(stored) == {str(e.event_id) for e in (*ours, resent)}
    assert str(foreign.event_id) not in stored
    digests = {hashlib.sha256(jpeg_bytes).hexdigest(), hashlib.sha256(mp4_bytes).hexdigest()}
    for event in ours:
        row = stored[str(event.event_id)]
        assert row["status"] == "ended"
        assert {m["sha256"] for m in row["media"]} == digests
    assert results.count(Outcome.REJECTED) >= 1  # the foreign event: 403, dropped, logged
    assert Outcome.RETRY not in results
