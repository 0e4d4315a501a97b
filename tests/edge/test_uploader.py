"""The uploader against a real HTTP server: the STAND-IN ingest app (tests/edge/
ingest_standin.py, uvicorn), which implements the COMMON.md ingest contract in memory.
The same paths against the real ``sitewatch server`` are covered by test_live_*.py."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from sitewatch.contract.events import Event, EventPhase, RuleKind
from sitewatch.edge.config import ServerConnection
from sitewatch.edge.outbox import Outbox
from sitewatch.edge.uploader import Outcome, TokenError, Uploader, UploadTuning, resolve_token
from tests.edge.ingest_standin import IngestStandIn

JPEG = b"\xff\xd8\xff\xe0" + b"j" * 500
MP4 = b"\0\0\0\x20ftypisom" + b"m" * 500
FAST = UploadTuning(retry_min_s=0.05, retry_max_s=0.2, heartbeat_s=0.2)


@pytest.fixture
def server() -> Iterator[IngestStandIn]:
    with IngestStandIn(site_id="s1") as running:
        yield running


def spool_event(outbox: Outbox, *, site_id: str = "s1") -> Event:
    event = Event(
        site_id=site_id, camera_id="c1", rule=RuleKind.NO_HELMET, started_at=datetime.now(UTC)
    )
    outbox.put_event(event)
    outbox.put_media_bytes(str(event.event_id), "snapshot", "snapshot.jpg", JPEG)
    outbox.put_media_bytes(str(event.event_id), "clip", "clip.mp4", MP4)
    outbox.put_event(
        event.model_copy(update={"phase": EventPhase.END, "ended_at": datetime.now(UTC)})
    )
    return event


def wait_until(condition: object, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def make_uploader(outbox: Outbox, server: IngestStandIn, **kw: Any) -> Uploader:
    return Uploader(
        outbox, base_url=server.url, token="test-token", timeout_s=2.0, tuning=FAST, **kw
    )


def drain_with_uploader(outbox: Outbox, server: IngestStandIn) -> None:
    uploader = make_uploader(outbox, server)
    uploader.start()
    try:
        assert uploader.drain(20)
    finally:
        uploader.stop()


def test_pushes_events_then_media_and_empties_the_outbox(
    tmp_path: Path, server: IngestStandIn
) -> None:
    outbox = Outbox(tmp_path, max_bytes=10**7)
    events = [spool_event(outbox) for _ in range(3)]
    uploader = make_uploader(
        outbox,
        server,
        heartbeat_body=lambda: {"cameras": [], "queue_depth": outbox.depth(), "version": "t"},
    )
    uploader.start()
    try:
        assert uploader.drain(20)
        wait_until(lambda: server.state.heartbeats)
    finally:
        uploader.stop()
    state = server.state
    for event in events:
        eid = str(event.event_id)
        assert state.events[eid].phase == EventPhase.END
        assert state.media[(eid, "snapshot")] == JPEG and state.media[(eid, "clip")] == MP4
        assert state.requests[f"snapshot:{eid}"] == 1 and state.requests[f"clip:{eid}"] == 1
    assert outbox.depth() == 0 and list((tmp_path / "media").iterdir()) == []


def test_server_errors_and_outage_are_retried_until_it_comes_back(
    tmp_path: Path, server: IngestStandIn
) -> None:
    outbox = Outbox(tmp_path, max_bytes=10**7)
    results: list[str] = []
    uploader = make_uploader(outbox, server, on_result=lambda _i, outcome: results.append(outcome))
    server.state.fail_next = 3  # three 503 answers
    first = spool_event(outbox)
    uploader.start()
    try:
        wait_until(lambda: outbox.depth() == 0)
        assert results[:3] == [Outcome.RETRY] * 3
        server.stop()  # the server goes down; events keep coming
        second = spool_event(outbox)
        time.sleep(1.0)
        assert outbox.depth() == 4
        server.start()
        wait_until(lambda: outbox.depth() == 0)
    finally:
        uploader.stop()
    assert set(server.state.events) == {str(first.event_id), str(second.event_id)}
    assert Outcome.RETRY in results[3:]


def test_resending_after_a_lost_ack_does_not_duplicate(
    tmp_path: Path, server: IngestStandIn
) -> None:
    """The server stores the item, the edge dies before deleting it: the next start re-sends."""
    outbox = Outbox(tmp_path, max_bytes=10**7)
    event = spool_event(outbox)
    uploader = make_uploader(outbox, server)
    item = outbox.next_item()
    assert item is not None
    uploader._request(item)  # sent and stored, but never acknowledged in the outbox
    outbox.close()

    drain_with_uploader(Outbox(tmp_path, max_bytes=10**7), server)
    assert list(server.state.events) == [str(event.event_id)]
    assert server.state.requests[f"event:{event.event_id}"] == 3  # start twice, end once
    assert len(server.state.media) == 2


def test_refused_items_become_dead_letters_and_do_not_block_the_queue(
    tmp_path: Path, server: IngestStandIn
) -> None:
    outbox = Outbox(tmp_path, max_bytes=10**7)
    dropped: list[str] = []
    outbox._on_drop = lambda item, reason: dropped.append(f"{item.kind}:{reason}")
    bad = spool_event(outbox, site_id="another-site")  # 403 for its start message
    good = spool_event(outbox)
    drain_with_uploader(outbox, server)
    assert list(server.state.events) == [str(good.event_id)]
    assert dropped == []  # nothing lost: the refused event and its held items are kept
    letters = outbox.dead_letters()
    assert [(d.item.kind, d.status) for d in letters] == [
        ("event", 403),
        ("snapshot", None),  # held behind the refused start, never sent out of order
        ("clip", None),
        ("event", None),
    ]
    assert {d.item.event_id for d in letters} == {str(bad.event_id)}
    assert letters[0].detail == "not this device's site"
    assert server.state.requests[f"snapshot:{bad.event_id}"] == 0


def test_wrong_token_is_retried_not_dropped(tmp_path: Path, server: IngestStandIn) -> None:
    outbox = Outbox(tmp_path, max_bytes=10**7)
    spool_event(outbox)
    uploader = Uploader(outbox, base_url=server.url, token="wrong", tuning=FAST)
    uploader.start()
    time.sleep(0.5)
    uploader.stop()
    assert outbox.depth() == 4 and not server.state.events


def test_token_is_read_from_a_file_beside_the_config(tmp_path: Path) -> None:
    (tmp_path / "device.token").write_text("  secret-token\n")
    config_path = tmp_path / "site.yaml"
    conn = ServerConnection(url="http://x", token_file="device.token")
    assert resolve_token(conn, config_path=config_path) == "secret-token"
    with pytest.raises(TokenError, match=f"{tmp_path}/nope.token: cannot read"):
        resolve_token(
            ServerConnection(url="http://x", token_file="nope.token"), config_path=config_path
        )
    with pytest.raises(TokenError, match="device_token or token_file"):
        resolve_token(ServerConnection(url="http://x"), config_path=config_path)
