"""The durable outbox: order, acknowledgement, recovery after a crash, the disk limit."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from sitewatch.contract.events import Event, EventPhase, RuleKind
from sitewatch.edge.outbox import Outbox, OutboxItem, SpoolBusy

JPEG = b"\xff\xd8" + b"x" * 1000


def make_event(phase: EventPhase = EventPhase.START, **kw: Any) -> Event:
    return Event(
        site_id="s1",
        camera_id="c1",
        rule=RuleKind.NO_HELMET,
        phase=phase,
        started_at=datetime(2026, 1, 1, tzinfo=UTC),
        **kw,
    )


def drain(outbox: Outbox) -> list[OutboxItem]:
    items = []
    while (item := outbox.next_item()) is not None:
        items.append(item)
        outbox.ack(item)
    return items


def test_items_leave_in_spool_order_and_ack_deletes_row_and_file(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path, max_bytes=10**6)
    event = make_event()
    outbox.put_event(event)
    outbox.put_media_bytes(str(event.event_id), "snapshot", "snapshot.jpg", JPEG)
    outbox.put_event(event.model_copy(update={"phase": EventPhase.END}))
    assert outbox.depth() == 3
    media_file = outbox.media_path(str(event.event_id), "snapshot.jpg")
    assert media_file.read_bytes() == JPEG

    items = drain(outbox)

    assert [i.kind for i in items] == ["event", "snapshot", "event"]
    assert [Event.model_validate_json(i.body).phase for i in items if i.body] == [
        EventPhase.START,
        EventPhase.END,
    ]
    assert outbox.depth() == 0 and outbox.used_bytes() == 0
    assert not media_file.exists() and not media_file.parent.exists()
    history = {(row[0], row[1]): row[4] for row in outbox.history()}
    assert all(acked is not None for acked in history.values()) and len(history) == 2


def test_unacknowledged_items_survive_a_reopen(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path, max_bytes=10**6)
    event = make_event()
    outbox.put_event(event)
    outbox.put_media_bytes(str(event.event_id), "clip", "clip.mp4", b"\0\0\0\x20ftypisom")
    first = outbox.next_item()
    assert first is not None
    outbox.close()  # "crash" after sending, before the ack

    reopened = Outbox(tmp_path, max_bytes=10**6)
    again = reopened.next_item()
    assert again is not None and again.seq == first.seq and again.body == first.body
    assert [i.kind for i in drain(reopened)] == ["event", "clip"]


def test_recovery_removes_orphans_and_rows_without_files(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    outbox = Outbox(tmp_path, max_bytes=10**6)
    event = make_event()
    outbox.put_event(event)
    outbox.put_media_bytes(str(event.event_id), "snapshot", "snapshot.jpg", JPEG)
    outbox.put_media_bytes(str(event.event_id), "snapshot_clean", "snapshot_clean.jpg", JPEG)
    outbox.close()
    orphan = tmp_path / "media" / "orphan-event" / "clip.mp4"  # renamed, row never committed
    orphan.parent.mkdir()
    orphan.write_bytes(b"partial")
    (tmp_path / "tmp" / "half-written.mp4").write_bytes(b"half")
    (tmp_path / "media" / str(event.event_id) / "snapshot.jpg").unlink()  # lost file

    with caplog.at_level(logging.INFO, logger="sitewatch.edge.outbox"):
        reopened = Outbox(tmp_path, max_bytes=10**6)

    assert not orphan.exists() and not orphan.parent.exists()
    assert list((tmp_path / "tmp").iterdir()) == []
    assert [i.kind for i in drain(reopened)] == ["event", "snapshot_clean"]
    assert "missing, dropping its row" in caplog.text


def test_disk_limit_drops_oldest_media_first_then_events(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    dropped: list[tuple[str, str, str]] = []
    outbox = Outbox(
        tmp_path,
        max_bytes=6000,
        on_drop=lambda item, reason: dropped.append((item.event_id, item.kind, reason)),
    )
    events = [make_event() for _ in range(3)]
    with caplog.at_level(logging.WARNING, logger="sitewatch.edge.outbox"):
        for event in events:
            outbox.put_event(event)
            outbox.put_media_bytes(str(event.event_id), "snapshot", "snapshot.jpg", b"\xff" * 1800)
        assert dropped[:1] == [(str(events[0].event_id), "snapshot", "spool_full")]
        assert outbox.used_bytes() <= 6000
        # More event records than fit: every media file goes before the first record.
        later = [make_event() for _ in range(15)]
        for event in later:
            outbox.put_event(event)

    kinds_dropped = [kind for _, kind, _ in dropped]
    first_event_drop = kinds_dropped.index("event")
    assert kinds_dropped[:first_event_drop] == ["snapshot"] * 3
    assert list((tmp_path / "media").iterdir()) == []
    dropped_events = [eid for eid, kind, _ in dropped if kind == "event"]
    spooled = [str(e.event_id) for e in events + later]
    assert dropped_events == spooled[: len(dropped_events)]  # the oldest records went
    assert outbox.used_bytes() <= 6000
    assert "outbox dropped snapshot of event" in caplog.text
    assert all(reason == "spool_full" for *_, reason in dropped)
    on_disk = sum(p.stat().st_size for p in (tmp_path / "media").glob("*/*"))
    assert on_disk <= 6000


def test_item_larger_than_the_spool_is_dropped_and_said(tmp_path: Path) -> None:
    dropped: list[str] = []
    outbox = Outbox(tmp_path, max_bytes=100, on_drop=lambda item, reason: dropped.append(reason))
    assert outbox.put_media_bytes("e1", "clip", "clip.mp4", b"\0" * 500) is None
    assert dropped == ["too_large"] and outbox.depth() == 0
    assert list((tmp_path / "tmp").iterdir()) == []


WRITER = textwrap.dedent("""
    import sys, time
    from datetime import UTC, datetime
    from pathlib import Path
    from sitewatch.contract.events import Event, RuleKind
    from sitewatch.edge.outbox import Outbox
    outbox = Outbox(Path(sys.argv[1]), max_bytes=10**9)
    n = 0
    while True:
        event = Event(site_id="s", camera_id="c", rule=RuleKind.NO_HELMET,
                      started_at=datetime.now(UTC))
        outbox.put_event(event)
        outbox.put_media_bytes(str(event.event_id), "snapshot", "snapshot.jpg",
                               b"\\xff\\xd8" + b"y" * 20000)
        n += 1
        if n == 5:
            print("WRITING", flush=True)
        if n % 3 == 0:
            item = outbox.next_item()
            outbox.ack(item)
""")


def test_sigkill_while_writing_leaves_a_consistent_spool(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(spool)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "WRITING"
    time.sleep(0.5)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()

    outbox = Outbox(spool, max_bytes=10**9)
    items = []
    while (item := outbox.next_item()) is not None:
        # every media row that came back has its whole file on disk before it is acked
        # (ack() unlinks with missing_ok, so after it a missing file would go unseen)
        if item.kind != "event":
            assert item.path is not None and item.path.is_file(), item
            assert item.path.stat().st_size == 20002, item
        items.append(item)
        outbox.ack(item)
    assert len(items) > 10
    event_ids = [i.event_id for i in items if i.kind == "event"]
    assert len(event_ids) == len(set(event_ids))
    assert list((spool / "media").iterdir()) == []


def test_a_spool_is_used_by_one_outbox_at_a_time(tmp_path: Path) -> None:
    first = Outbox(tmp_path, max_bytes=10**6)
    with pytest.raises(SpoolBusy, match=rf"{tmp_path} is in use by another edge process \(pid"):
        Outbox(tmp_path, max_bytes=10**6)
    first.close()
    Outbox(tmp_path, max_bytes=10**6).close()  # free again once closed
