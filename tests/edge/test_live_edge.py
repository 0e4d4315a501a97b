"""The live edge box end to end: a real RTSP server (gst-rtsp-server) streaming a real
video, ``sitewatch edge run`` as a subprocess with the real pipeline (ONNX detector,
tracker, rules: the whole frame is a restricted zone, so every person raises an event),
and the real central server (``sitewatch server`` subprocess, SQLite). Each fault test
ends with nothing lost and nothing duplicated: every event the edge spooled is on the
server exactly once, with its media."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import shared_file
from tests.edge.live_central import RealCentral
from tests.edge.live_support import (
    EdgeProcess,
    Spool,
    ffprobe,
    running_edge,
    wait_for,
    write_site,
)
from tests.rtsp_server import RtspServer, system_rtsp_available

pytestmark = pytest.mark.slow
SITE = "live-site"


@pytest.fixture
def rtsp(tmp_path: Path) -> Iterator[RtspServer]:
    reason = system_rtsp_available()
    if reason:
        pytest.skip(reason)
    video = RtspServer.looped_copy(
        shared_file("data/videos/barrier-walkway.mp4"), tmp_path / "loop.mp4", 3
    )
    server = RtspServer(video).start()
    yield server
    server.stop()


@pytest.fixture
def central(tmp_path: Path) -> Iterator[RealCentral]:
    server = RealCentral(tmp_path / "central", site_id=SITE)
    yield server
    server.stop()


def site_config(tmp_path: Path, rtsp: RtspServer, central: RealCentral, **kw: Any) -> Path:
    edge_dir = tmp_path / "edge"
    edge_dir.mkdir(exist_ok=True)
    model = shared_file("models/yolov8n-coco-int8.onnx")
    return write_site(
        edge_dir,
        site_id=SITE,
        rtsp_url=rtsp.url,
        server_url=central.url,
        token=central.token,
        model=model,
        **kw,
    )


def assert_delivered_exactly_once(
    spool: Spool, central: RealCentral, *, clips: bool = True
) -> None:
    """Every event the edge raised is on the server once, nothing else is, media complete."""
    raised = spool.started_event_ids()
    on_server = central.events()
    assert raised, "the edge raised no event"
    assert set(on_server) == raised
    assert spool.depth() == 0
    for event_id in raised:
        media = central.media(event_id)
        assert {"snapshot", "snapshot_clean"} <= set(media), event_id
        if clips:
            assert "clip" in media, event_id


def test_events_with_playable_clips_reach_the_server(
    tmp_path: Path, rtsp: RtspServer, central: RealCentral
) -> None:
    central.start()
    with running_edge(site_config(tmp_path, rtsp, central, dead_camera=True)) as edge:
        wait_for(
            lambda: edge.metric("sitewatch_edge_clips_total", outcome="written") >= 1,
            60,
            "a first clip",
        )
        assert edge.metric("sitewatch_edge_cameras_online") == 1
        assert edge.metric("sitewatch_edge_camera_online", camera="dead-cam") == 0
        assert edge.metric("sitewatch_edge_reconnects_total", camera="dead-cam") >= 1
        assert edge.metric("sitewatch_edge_inference_seconds_count") > 0
    spool = Spool(tmp_path / "edge" / "spool")
    assert_delivered_exactly_once(spool, central)
    for event_id in spool.started_event_ids():
        (tmp_path / "probe.mp4").write_bytes(central.media(event_id)["clip"])
        info = ffprobe(tmp_path / "probe.mp4")
        assert (info["codec_name"], info["pix_fmt"]) == ("h264", "yuv420p")
    beat = central.last_heartbeat()  # the dead camera is reported, and stopped nothing
    assert beat is not None
    assert {c["camera_id"]: c["online"] for c in beat["cameras"]} == {
        "gate-cam": False,  # the last heartbeat is sent on shutdown
        "dead-cam": False,
    }


def test_rtsp_server_restarted_mid_stream(
    tmp_path: Path, rtsp: RtspServer, central: RealCentral
) -> None:
    central.start()
    # A post-roll longer than the test: every clip is still being recorded at SIGTERM,
    # so the clean shutdown must finish them early and upload them.
    with running_edge(site_config(tmp_path, rtsp, central, post_s=50)) as edge:
        wait_for(
            lambda: edge.metric("sitewatch_edge_events_total", phase="start") >= 1,
            60,
            "a first event",
        )
        rtsp.stop()
        wait_for(lambda: edge.metric("sitewatch_edge_cameras_online") == 0, 15, "camera offline")
        time.sleep(2)
        rtsp.start()
        wait_for(lambda: edge.metric("sitewatch_edge_cameras_online") == 1, 20, "camera back")
        assert edge.metric("sitewatch_edge_reconnects_total") >= 1
        before = edge.metric("sitewatch_edge_events_total", phase="start")
        wait_for(
            lambda: edge.metric("sitewatch_edge_events_total", phase="start") > before,
            60,
            "an event after the reconnect",
        )
        assert edge.metric("sitewatch_edge_clips_total") == 0
    assert_delivered_exactly_once(Spool(tmp_path / "edge" / "spool"), central)
    assert "finishing clip for event" in edge.log_text()


def test_central_server_down_then_back_drains_the_outbox(
    tmp_path: Path, rtsp: RtspServer, central: RealCentral
) -> None:
    spool = Spool(tmp_path / "edge" / "spool")
    with running_edge(site_config(tmp_path, rtsp, central)) as edge:  # server not started
        wait_for(
            lambda: len(spool.started_event_ids()) >= 2 and spool.depth() >= 6,
            90,
            "events piling up while the server is down",
        )
        assert edge.metric("sitewatch_edge_uploads_total", outcome="retry") >= 1
        central.start()
        wait_for(
            lambda: spool.depth() == 0 and len(central.events()) >= 2,
            60,
            "the outbox to drain",
        )
    assert_delivered_exactly_once(spool, central)


def test_edge_killed_mid_upload_then_restarted(
    tmp_path: Path, rtsp: RtspServer, central: RealCentral
) -> None:
    spool = Spool(tmp_path / "edge" / "spool")
    config = site_config(tmp_path, rtsp, central)
    first = EdgeProcess(config).start()  # server down: the outbox fills
    try:
        wait_for(
            lambda: len(spool.started_event_ids()) >= 2 and spool.depth() >= 8, 90, "a full outbox"
        )
        central.start()
        wait_for(lambda: len(central.events()) >= 1, 30, "uploads to begin", poll_s=0.01)
    finally:
        first.kill()  # SIGKILL while the outbox is being pushed
    left = spool.depth()
    assert left > 0, "killed too late: nothing was left mid-upload"
    with running_edge(config) as second:
        wait_for(lambda: spool.depth() == 0, 60, "the restarted edge to drain the outbox")
    # A clip still being recorded at the SIGKILL lived in memory only: those events
    # arrive with their snapshots but without a clip. Everything spooled arrives once.
    assert_delivered_exactly_once(spool, central, clips=False)
    waiting = re.findall(r"\((\d+) items waiting\)", second.log_text())
    assert int(waiting[-1]) == left  # the restarted edge resumed the killed one's outbox


def test_spool_disk_limit_drops_oldest_media_first(
    tmp_path: Path, rtsp: RtspServer, central: RealCentral
) -> None:
    spool = Spool(tmp_path / "edge" / "spool")
    with running_edge(site_config(tmp_path, rtsp, central, max_bytes=350_000)) as edge:
        wait_for(
            lambda: edge.metric("sitewatch_edge_outbox_dropped_total") >= 1,
            90,
            "the spool limit to be hit",
        )
        assert edge.metric("sitewatch_edge_outbox_dropped_total", reason="spool_full") >= 1
        assert edge.metric("sitewatch_edge_outbox_dropped_total", kind="event") == 0
        assert edge.metric("sitewatch_edge_outbox_bytes") <= 350_000
        central.start()
        wait_for(lambda: spool.depth() == 0, 60, "the outbox to drain")
    assert "outbox dropped" in edge.log_text() and "spool full" in edge.log_text()
    raised = spool.started_event_ids()
    assert set(central.events()) == raised
    oldest = min(spool.history(), key=lambda row: row[2])[0]
    # The first media item spooled (the oldest event's annotated snapshot) went first.
    assert "snapshot" not in central.media(oldest)
