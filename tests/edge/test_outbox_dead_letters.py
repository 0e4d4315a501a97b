"""Dead letters: what the server refuses for good stays in the outbox (not lost), is shown
by ``sitewatch edge outbox list`` and the metrics, and goes back in order on a retry or
after a software upgrade. The uploader runs against a real local HTTP receiver (uvicorn)
that refuses events with 422 until it is told to accept them."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI, File, HTTPException, Request, UploadFile
from prometheus_client import generate_latest
from typer.testing import CliRunner, Result

import sitewatch
from sitewatch.cli import app
from sitewatch.contract.events import Event, RuleKind
from sitewatch.edge.metrics import EdgeMetrics
from sitewatch.edge.outbox import Outbox, UnknownDeadLetter
from sitewatch.edge.uploader import Outcome, Uploader, UploadTuning
from tests.rtsp_server import free_port

JPEG = b"\xff\xd8" + b"j" * 1000
MP4 = b"\0\0\0\x20ftypisom" + b"m" * 1000
FAST = UploadTuning(retry_min_s=0.05, retry_max_s=0.2, heartbeat_s=60)
REFUSAL = "body.schema_version: field required"
cli = CliRunner()


@dataclass
class ReceiverState:
    refuse: bool = True
    refuse_media: set[str] = field(default_factory=set)  # media kinds answered with 422
    received: list[tuple[str, str]] = field(default_factory=list)  # (event id, kind)
    lock: threading.Lock = field(default_factory=threading.Lock)


class Receiver:
    """A real HTTP ingest receiver: 422 for every event while ``refuse``, else stores."""

    def __init__(self) -> None:
        self.state = ReceiverState()
        self.port = free_port()
        app = FastAPI()
        state = self.state

        @app.put("/api/v1/events/{event_id}")
        async def put_event(event_id: str, request: Request) -> dict[str, str]:
            Event.model_validate_json(await request.body())
            if state.refuse:
                raise HTTPException(422, REFUSAL)
            with state.lock:
                state.received.append((event_id, "event"))
            return {"event_id": event_id}

        @app.put("/api/v1/events/{event_id}/media/{kind}")
        async def put_media(
            event_id: str, kind: str, file: UploadFile = File(...)
        ) -> dict[str, str]:
            await file.read()
            if kind in state.refuse_media:
                raise HTTPException(422, f"{kind} is not a readable file")
            with state.lock:
                if (event_id, "event") not in state.received:
                    raise HTTPException(404, "unknown event")
                state.received.append((event_id, kind))
            return {"stored": kind}

        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Receiver:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            assert time.monotonic() < deadline, "receiver did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(10)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


def spool_event(outbox: Outbox) -> str:
    event = Event(
        site_id="s1", camera_id="c1", rule=RuleKind.NO_HELMET, started_at=datetime.now(UTC)
    )
    eid = str(event.event_id)
    outbox.put_event(event)
    outbox.put_media_bytes(eid, "snapshot", "snapshot.jpg", JPEG)
    outbox.put_media_bytes(eid, "clip", "clip.mp4", MP4)
    return eid


def push(outbox: Outbox, receiver: Receiver) -> list[str]:
    """Run the uploader until the queue is empty; the outcomes it reported."""
    outcomes: list[str] = []
    uploader = Uploader(
        outbox,
        base_url=receiver.url,
        token="t",
        timeout_s=2.0,
        tuning=FAST,
        on_result=lambda _item, outcome: outcomes.append(outcome),
    )
    uploader.start()
    try:
        assert uploader.drain(20)
    finally:
        uploader.stop()
    return outcomes


def invoke(*args: str) -> Result:
    result = cli.invoke(app, ["edge", "outbox", *args])
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


def refused_spool(tmp_path: Path, receiver: Receiver) -> tuple[Path, str]:
    """A closed spool holding one refused event with its two media files."""
    spool = tmp_path / "spool"
    outbox = Outbox(spool, max_bytes=10**7)
    eid = spool_event(outbox)
    assert push(outbox, receiver) == [Outcome.REJECTED]  # the media were held, not sent
    outbox.close()
    return spool, eid


def test_a_422_keeps_the_item_and_its_files_as_dead_letters(
    tmp_path: Path, receiver: Receiver
) -> None:
    dropped: list[str] = []
    outbox = Outbox(tmp_path, max_bytes=10**7, on_drop=lambda item, reason: dropped.append(reason))
    eid = spool_event(outbox)
    push(outbox, receiver)

    assert outbox.depth() == 0 and dropped == [] and receiver.state.received == []
    letters = outbox.dead_letters()
    assert [(d.item.kind, d.status) for d in letters] == [
        ("event", 422),
        ("snapshot", None),
        ("clip", None),
    ]
    assert letters[0].detail == REFUSAL and letters[0].item.event_id == eid
    assert str(Event.model_validate_json(letters[0].item.body or "").event_id) == eid
    assert all(d.version == sitewatch.__version__ for d in letters)
    assert letters[1].detail.startswith("held")
    snapshot = outbox.media_path(eid, "snapshot.jpg")
    assert snapshot.read_bytes() == JPEG
    assert outbox.used_bytes() == sum(d.item.size_bytes for d in letters)  # in the budget

    metrics = EdgeMetrics()
    metrics.observe_outbox(outbox)
    text = generate_latest(metrics.registry).decode()
    assert "sitewatch_edge_outbox_dead_letters 3.0" in text
    assert "sitewatch_edge_outbox_items 0.0" in text
    outbox.close()

    reopened = Outbox(tmp_path, max_bytes=10**7)  # recovery must not take them for orphans
    assert snapshot.read_bytes() == JPEG and outbox.media_path(eid, "clip.mp4").is_file()
    assert len(reopened.dead_letters()) == 3 and reopened.depth() == 0
    reopened.close()


def test_cli_lists_then_retries_and_an_accepting_server_gets_them_in_order(
    tmp_path: Path, receiver: Receiver
) -> None:
    spool, eid = refused_spool(tmp_path, receiver)

    listed = invoke("list", "--spool", str(spool))
    assert listed.exit_code == 0, listed.output
    lines = listed.output.splitlines()
    header = next(line for line in lines if "event id" in line)
    for column in ("id", "kind", "status", "detail", "when", "version"):
        assert column in header
    rows = [line for line in lines if eid in line]
    assert len(rows) == 3
    assert "event" in rows[0] and "422" in rows[0] and REFUSAL in rows[0]
    assert sitewatch.__version__ in rows[0] and "held" in rows[1] and "clip" in rows[2]
    assert "3 dead letter(s)" in listed.output

    retried = invoke("retry", "--spool", str(spool), "--all")
    assert retried.exit_code == 0, retried.output
    assert "3 dead letter(s) back in the queue" in retried.output
    assert "no dead letters" in invoke("list", "--spool", str(spool)).output

    receiver.state.refuse = False
    outbox = Outbox(spool, max_bytes=10**7)
    assert outbox.depth() == 3
    assert push(outbox, receiver) == [Outcome.SENT] * 3
    assert receiver.state.received == [(eid, "event"), (eid, "snapshot"), (eid, "clip")]
    assert outbox.dead_letters() == [] and list((spool / "media").iterdir()) == []
    outbox.close()


def test_retry_by_id_brings_back_the_whole_event_before_newer_items(
    tmp_path: Path, receiver: Receiver
) -> None:
    outbox = Outbox(tmp_path, max_bytes=10**7)
    first = spool_event(outbox)
    push(outbox, receiver)
    receiver.state.refuse = False
    later = spool_event(outbox)  # spooled after the refusal, not yet sent
    held_clip = outbox.dead_letters()[2]
    assert held_clip.item.kind == "clip"
    with pytest.raises(UnknownDeadLetter, match="no dead letter with id 999"):
        outbox.retry_dead_letters([held_clip.id, 999])
    assert len(outbox.dead_letters()) == 3  # nothing re-queued on an unknown id

    assert outbox.retry_dead_letters([held_clip.id]) == 3  # its event's start goes first
    push(outbox, receiver)
    kinds = ["event", "snapshot", "clip"]
    assert receiver.state.received == [(first, k) for k in kinds] + [(later, k) for k in kinds]
    outbox.close()


def test_a_new_version_retries_dead_letters_once_at_open(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path, max_bytes=10**7, version="0.0.1")
    eid = spool_event(outbox)
    item = outbox.next_item()
    assert item is not None and outbox.reject(item, "schema v1", status=422)
    assert outbox.next_item() is None  # the media are held behind it now
    assert [d.version for d in outbox.dead_letters()] == ["0.0.1"] * 3
    outbox.close()

    same = Outbox(tmp_path, max_bytes=10**7, version="0.0.1")
    assert same.depth() == 0 and len(same.dead_letters()) == 3  # same version: left alone
    same.close()
    unchecked = Outbox(tmp_path, max_bytes=10**7, version="0.2.0", retry_on_upgrade=False)
    assert unchecked.depth() == 0
    unchecked.close()

    upgraded = Outbox(tmp_path, max_bytes=10**7, version="0.2.0")
    assert upgraded.dead_letters() == []
    back = upgraded.next_item()
    assert back is not None and back.kind == "event" and back.seq == item.seq
    assert upgraded.depth() == 3
    assert upgraded.reject(back, "still refused", status=422)  # refused again
    assert upgraded.next_item() is None
    upgraded.close()

    again = Outbox(tmp_path, max_bytes=10**7, version="0.2.0")  # once: not again
    assert again.depth() == 0
    assert [(d.item.event_id, d.version) for d in again.dead_letters()] == [(eid, "0.2.0")] * 3
    again.close()


OLD_SCHEMA = """
CREATE TABLE items (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL, kind TEXT NOT NULL,
    body TEXT, path TEXT, size_bytes INTEGER NOT NULL, created_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX items_kind ON items (kind, seq);
CREATE TABLE history (
    event_id TEXT NOT NULL, phase TEXT NOT NULL, spooled_at REAL NOT NULL,
    started_at TEXT, acked_at REAL, PRIMARY KEY (event_id, phase)
);
"""


def test_a_spool_from_before_dead_letters_opens_with_its_queue_intact(tmp_path: Path) -> None:
    media = tmp_path / "media" / "e1" / "snapshot.jpg"
    media.parent.mkdir(parents=True)
    media.write_bytes(JPEG)
    db = sqlite3.connect(tmp_path / "outbox.db")
    db.executescript(OLD_SCHEMA)
    db.execute(
        "INSERT INTO items (event_id, kind, path, size_bytes, created_at)"
        " VALUES ('e1', 'snapshot', ?, ?, 1.0)",
        (str(media), len(JPEG)),
    )
    db.commit()
    db.close()

    outbox = Outbox(tmp_path, max_bytes=10**7)
    assert outbox.dead_letters() == [] and outbox.dead_letter_count() == 0
    item = outbox.next_item()
    assert item is not None and item.path == media and media.read_bytes() == JPEG
    assert outbox.reject(item, "gone", status=410)
    assert outbox.dead_letter_count() == 1
    outbox.close()


def test_dead_letters_count_toward_the_budget_and_go_first_when_room_is_needed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    dropped: list[tuple[str, str]] = []
    outbox = Outbox(
        tmp_path, max_bytes=5000, on_drop=lambda item, reason: dropped.append((item.kind, reason))
    )
    eid = spool_event(outbox)
    item = outbox.next_item()
    assert item is not None and outbox.reject(item, "refused", status=422)
    assert outbox.next_item() is None  # snapshot and clip held
    letters_bytes = outbox.used_bytes()
    assert letters_bytes > 2000 and outbox.depth() == 0

    with caplog.at_level(logging.WARNING, logger="sitewatch.edge.outbox"):
        outbox.put_media_bytes("e2", "snapshot", "snapshot.jpg", b"\xff\xd8" + b"z" * 3000)

    assert dropped[0] == ("snapshot", "dead_letter_spool_full")  # the oldest dead media
    assert all(reason == "dead_letter_spool_full" for _, reason in dropped)
    assert outbox.used_bytes() <= 5000 and outbox.depth() == 1
    assert "dead letter" in caplog.text and "outbox dropped snapshot of event" in caplog.text
    assert not outbox.media_path(eid, "snapshot.jpg").exists()
    outbox.close()


def test_a_refused_item_already_dropped_for_space_is_not_dead_lettered(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path, max_bytes=3000)
    outbox.put_media_bytes("e1", "snapshot", "snapshot.jpg", JPEG)
    item = outbox.next_item()
    assert item is not None
    outbox.put_media_bytes("e2", "snapshot", "snapshot.jpg", JPEG * 2)  # pushes e1 out
    assert not outbox.reject(item, "refused", status=422)
    assert outbox.dead_letter_count() == 0
    outbox.close()


def write_config(folder: Path) -> Path:
    config = folder / "site.yaml"
    config.write_text(
        "site: {id: s1}\n"
        "model: {path: nowhere.onnx}\n"
        "cameras: [{id: cam1, source: a.mp4}]\n"
        "outbox: {path: spool}\n"
    )
    return config


def test_cli_finds_the_spool_beside_the_config_and_errors_are_one_line(
    tmp_path: Path, receiver: Receiver
) -> None:
    config = write_config(tmp_path)

    missing = invoke("list", "--config", str(config))
    assert missing.exit_code == 2 and f"no outbox at {tmp_path / 'spool'}" in missing.output
    assert len(missing.output.strip().splitlines()) == 1

    spool, eid = refused_spool(tmp_path, receiver)
    listed = invoke("list", "-c", str(config))
    assert listed.exit_code == 0 and eid in listed.output

    busy = Outbox(spool, max_bytes=10**7)  # the box is running
    try:
        for args in (["list"], ["retry", "--all"]):
            locked = invoke(*args, "--config", str(config))
            assert locked.exit_code == 2
            assert "in use by another edge process" in locked.output
            assert len(locked.output.strip().splitlines()) == 1
    finally:
        busy.close()

    assert invoke("list").exit_code == 2  # neither --config nor --spool
    assert invoke("retry", "--spool", str(spool)).exit_code == 2  # neither --id nor --all
    unknown = invoke("retry", "--spool", str(spool), "--id", "999")
    assert unknown.exit_code == 1 and "no dead letter with id 999" in unknown.output
    after = Outbox(spool, max_bytes=10**7)
    assert len(after.dead_letters()) == 3  # still there
    after.close()


def test_a_refused_media_file_holds_back_nothing(tmp_path: Path, receiver: Receiver) -> None:
    """Only a refused event record holds its event's later items: a bad snapshot is kept
    as a dead letter while the clip still goes."""
    receiver.state.refuse = False
    receiver.state.refuse_media = {"snapshot"}
    outbox = Outbox(tmp_path / "spool", max_bytes=10**7)
    eid = spool_event(outbox)
    assert push(outbox, receiver) == [Outcome.SENT, Outcome.REJECTED, Outcome.SENT]
    assert receiver.state.received == [(eid, "event"), (eid, "clip")]
    (letter,) = outbox.dead_letters()
    assert letter.item.kind == "snapshot" and letter.status == 422
    assert letter.item.path is not None and letter.item.path.read_bytes() == JPEG
    outbox.close()
