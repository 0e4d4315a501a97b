"""Zones from the server on the box (issue 17), piece by piece:

- RuleEngine.replace_zones: the zone rules whose zones changed end their open events and
  judge with the new zones; unchanged zone rules and no_helmet go on untouched.
- TrackRecorder: lead-in boxes on the start, the complete track once the clip window
  passed (one more update when the last message went earlier), at most 1200 boxes.
- ZonesSync against a local HTTP server: 200 kept on disk (whole) and published, 204
  nothing, a restart with the server gone runs with the kept version; a bad answer keeps
  the zones in use.
- Uploader: the heartbeat reply is handed on; put_picture sends the JPEG and the people.
- ``sitewatch config check --zones`` and the box's kept file.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI, File, Form, Query, Request, Response, UploadFile
from typer.testing import CliRunner

from sitewatch.cli import app
from sitewatch.contract.events import MAX_TRACK_BOXES, Event, EventPhase, RuleKind
from sitewatch.contract.heartbeat import HeartbeatReply
from sitewatch.contract.site_config import SiteZones
from sitewatch.edge.outbox import Outbox
from sitewatch.edge.site_zones import SITE_ZONES_NAME, ZonesSync, camera_zones
from sitewatch.edge.track_boxes import TrackRecorder
from sitewatch.edge.uploader import Uploader, UploadTuning
from sitewatch.zones.config import CameraZones
from tests.edge.rules_support import T0, Person, Stepper, detections, site_config
from tests.rtsp_server import free_port

PIT = {"name": "pit", "polygon": [[0.2, 0.2], [0.6, 0.2], [0.6, 0.6], [0.2, 0.6]]}
FAR = {"name": "far", "polygon": [[0.7, 0.7], [0.9, 0.7], [0.9, 0.9], [0.7, 0.9]]}
EDGE = {"name": "rim", "polyline": [[0.0, 0.1], [1.0, 0.1]], "danger_distance": 0.05}
RULES = {
    "no_helmet": {"min_duration_s": 0.0, "end_after_s": 1.0},
    "restricted_zone": {"min_duration_s": 0.0, "end_after_s": 1.0, "cooldown_s": 0},
    "fall_edge": {"min_duration_s": 0.0, "end_after_s": 1.0},
}


def _kinds(events: list[Event]) -> list[tuple[str, str]]:
    return sorted((e.rule.value, e.phase.value) for e in events)


# -- the swap in the rule engine ------------------------------------------------------------


def test_swap_ends_events_of_changed_zone_rules_only() -> None:
    s = Stepper(site_config(rules=RULES, zones={"restricted": [PIT], "edges": [EDGE]}))
    bare_in_pit = Person(1, feet_xy=(0.4, 0.4), helmet="bare")
    assert _kinds(s.step(0.0, bare_in_pit)) == [
        ("no_helmet", "start"),
        ("restricted_zone", "start"),
    ]
    edge_rule = next(r for r in s.engine.rules if r.kind is RuleKind.FALL_EDGE)
    no_helmet = next(r for r in s.engine.rules if r.kind is RuleKind.NO_HELMET)

    # the pit moves away from the person: its event ends at once, cleanly
    ended = s.engine.replace_zones(
        CameraZones.model_validate({"restricted": [FAR], "edges": [EDGE]}), s.at(0.5)
    )
    assert [(e.rule, e.phase, e.zone) for e in ended] == [
        (RuleKind.RESTRICTED_ZONE, EventPhase.END, "pit")
    ]
    # the untouched rules are the same objects, their state kept
    assert next(r for r in s.engine.rules if r.kind is RuleKind.FALL_EDGE) is edge_rule
    assert next(r for r in s.engine.rules if r.kind is RuleKind.NO_HELMET) is no_helmet
    assert s.step(1.0, bare_in_pit) == []  # no_helmet goes on, no restricted_zone any more
    into_far = s.step(1.5, Person(1, feet_xy=(0.8, 0.8), helmet="bare"))
    assert [(e.rule, e.phase, e.zone) for e in into_far] == [
        (RuleKind.RESTRICTED_ZONE, EventPhase.START, "far")
    ]

    # the same zones again: nothing ends, nothing is rebuilt
    same = CameraZones.model_validate({"restricted": [FAR], "edges": [EDGE]})
    restricted = next(r for r in s.engine.rules if r.kind is RuleKind.RESTRICTED_ZONE)
    assert s.engine.replace_zones(same, s.at(2.0)) == []
    assert next(r for r in s.engine.rules if r.kind is RuleKind.RESTRICTED_ZONE) is restricted

    # no zones at all (back to a YAML without zones): the zone rules go, no_helmet stays
    gone = s.engine.replace_zones(CameraZones(), s.at(2.5))
    assert _kinds(gone) == [("restricted_zone", "end")]
    assert [r.kind for r in s.engine.rules] == [RuleKind.NO_HELMET]
    assert s.engine.finish(s.at(3.0))[0].rule is RuleKind.NO_HELMET


def test_camera_zones_server_entry_wins_and_unlisted_camera_keeps_yaml() -> None:
    site = site_config(rules=RULES, zones={"restricted": [PIT]})
    camera = site.cameras[0]
    server = SiteZones(version=4, cameras={"cam": CameraZones.model_validate({"edges": [EDGE]})})
    assert camera_zones(camera, server) == (server.cameras["cam"], 4)
    assert camera_zones(camera, SiteZones(version=5)) == (camera.zones, None)
    assert camera_zones(camera, None) == (camera.zones, None)


# -- track boxes ---------------------------------------------------------------------------


def _event(phase: EventPhase, started_s: float, **kw: Any) -> Event:
    return Event(
        site_id="site-1",
        camera_id="cam",
        rule=RuleKind.RESTRICTED_ZONE,
        phase=phase,
        track_id=1,
        started_at=T0 + timedelta(seconds=started_s),
        **kw,
    )


def test_track_has_lead_in_then_the_complete_window_after_an_early_end() -> None:
    recorder = TrackRecorder(pre_s=1.0, post_s=1.0, history_s=5.0)
    at = [T0 + timedelta(seconds=0.25 * k) for k in range(20)]  # 0 .. 4.75 s
    for t in at[:9]:  # 0 .. 2 s; the event starts at 2 s, first seen at 1.5 s
        recorder.observe(detections(Person(1), Person(2, feet_xy=(0.1, 0.5))), t)
    start = recorder.attach(_event(EventPhase.START, 1.5), at[8])
    assert start.track is not None
    # lead-in from 0.5 s (pre_s before started_at): 0.5 .. 2.0 s, relative to 1.5 s
    assert [box[0] for box in start.track] == [-1.0, -0.75, -0.5, -0.25, 0.0, 0.25, 0.5]
    assert start.track[0][1:] == (480.0, 800.0, 520.0, 900.0)  # pixels of the frame
    recorder.observe(detections(Person(1)), at[9])
    end = recorder.attach(
        _event(EventPhase.END, 1.5, event_id=start.event_id, ended_at=at[9]), at[9]
    )
    assert end.track is not None and len(end.track) == 8
    assert recorder.due(at[9]) == []
    for t in at[10:13]:  # up to 3.0 s, the end of the clip window (2 s + post 1 s)
        recorder.observe(detections(Person(1)), t)
        assert recorder.due(t) == []
    recorder.observe(detections(Person(1)), at[13])
    [final] = recorder.due(at[13])
    assert final.phase is EventPhase.UPDATE and final.event_id == start.event_id
    assert final.ended_at == at[9]  # a copy of the end: the server keeps only the boxes
    assert final.track is not None and [b[0] for b in final.track][-1] == 1.5
    assert len(final.track) == 11  # 0.5 .. 3.0 s: the clip window, nothing after it
    assert recorder.open_events == 0 and recorder.due(at[19]) == []


def test_no_extra_message_when_the_last_one_was_complete_and_place_events_have_no_track() -> None:
    recorder = TrackRecorder(pre_s=0.0, post_s=0.5, history_s=5.0)
    recorder.observe(detections(Person(1)), T0)
    start = recorder.attach(_event(EventPhase.START, 0.0), T0)
    later = T0 + timedelta(seconds=2)
    recorder.observe(detections(Person(1)), later)
    end = recorder.attach(
        _event(EventPhase.END, 0.0, event_id=start.event_id, ended_at=later), later
    )
    assert end.track is not None and len(end.track) == 1  # 2 s is past the window
    assert recorder.due(later) == []
    place = Event(site_id="site-1", camera_id="cam", rule=RuleKind.POST_UNATTENDED, started_at=T0)
    assert recorder.attach(place, T0).track is None


def test_track_is_subsampled_to_the_contract_limit() -> None:
    recorder = TrackRecorder(pre_s=60.0, post_s=60.0, history_s=70.0)
    times = [T0 + timedelta(seconds=k / 50) for k in range(3000)]  # 60 s at 50 fps
    for t in times[:1500]:
        recorder.observe(detections(Person(1)), t)
    start = recorder.attach(_event(EventPhase.START, 30.0), times[1499])
    for t in times[1500:]:
        recorder.observe(detections(Person(1)), t)
    [final] = recorder.flush()
    assert start.track is not None and len(start.track) == MAX_TRACK_BOXES  # 30 s lead-in
    assert start.track[0][0] == -30.0
    assert final.track is not None and len(final.track) == MAX_TRACK_BOXES
    assert final.track[0][0] == -30.0 and final.track[-1][0] == pytest.approx(29.98)
    Event.model_validate(final.model_dump())  # within the contract


# -- the sync against an HTTP server --------------------------------------------------------


class ZonesServer:
    """A local server with the box's endpoints of issue 17 (site-config, heartbeat,
    picture), recording what it got."""

    def __init__(self) -> None:
        self.zones = SiteZones(version=0)
        self.reply = HeartbeatReply()
        self.pulls: list[int] = []
        self.pictures: list[tuple[str, bytes, str | None]] = []
        self.heartbeats: list[dict[str, Any]] = []
        self.broken = False
        api = FastAPI()

        @api.get("/api/v1/site-config")
        def site_config_(since_version: int = Query(0)) -> Any:
            self.pulls.append(since_version)
            if self.broken:
                return {"version": "x"}
            if since_version and since_version == self.zones.version:
                return Response(status_code=204)
            return self.zones.model_dump(mode="json")

        @api.post("/api/v1/heartbeat")
        async def heartbeat(request: Request) -> Any:
            self.heartbeats.append(await request.json())
            return self.reply.model_dump()

        @api.put("/api/v1/cameras/{camera_id}/picture", status_code=204)
        async def picture(
            camera_id: str, file: UploadFile = File(...), persons: str | None = Form(None)
        ) -> Response:
            self.pictures.append((camera_id, await file.read(), persons))
            return Response(status_code=204)

        self.port = free_port()
        self.server = uvicorn.Server(
            uvicorn.Config(api, host="127.0.0.1", port=self.port, log_level="warning")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ZonesServer:
        self.thread.start()
        while not self.server.started:
            threading.Event().wait(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture
def zones_server() -> Iterator[ZonesServer]:
    with ZonesServer() as server:
        yield server


def test_pull_keeps_the_version_on_disk_and_a_restart_offline_uses_it(
    zones_server: ZonesServer, tmp_path: Path
) -> None:
    path = tmp_path / SITE_ZONES_NAME
    sync = ZonesSync(zones_server.url, "t", path, interval_s=60, timeout_s=2)
    got: list[SiteZones] = []
    sync.subscribe(got.append)
    zones_server.zones = SiteZones(
        version=3, cameras={"cam": CameraZones.model_validate({"restricted": [PIT]})}
    )
    assert sync.pull() is True and sync.version == 3
    assert [z.version for z in got] == [3]
    assert SiteZones.model_validate_json(path.read_text()) == zones_server.zones
    assert not list(tmp_path.glob("*.tmp"))
    assert sync.pull() is False  # 204: the box has it
    assert zones_server.pulls == [0, 3]
    zones_server.broken = True  # a malformed answer: counted, the zones in use are kept
    assert sync.pull() is False and sync.failures == 1 and sync.version == 3
    sync.stop()

    dead = f"http://127.0.0.1:{free_port()}"
    again = ZonesSync(dead, "t", path, interval_s=60, timeout_s=1)
    assert again.version == 3 and again.zones == zones_server.zones
    assert again.pull() is False and again.failures == 1
    again.stop()


def test_the_poll_thread_pulls_when_woken(zones_server: ZonesServer, tmp_path: Path) -> None:
    sync = ZonesSync(zones_server.url, "t", tmp_path / SITE_ZONES_NAME, interval_s=600)
    sync.start()
    try:
        assert sync.version == 0
        zones_server.zones = SiteZones(version=1)
        sync.note_server_version(0)  # the same: no pull
        threading.Event().wait(0.3)
        assert zones_server.pulls == [0]
        sync.note_server_version(1)
        for _ in range(100):
            if sync.version == 1:
                break
            threading.Event().wait(0.05)
        assert sync.version == 1
    finally:
        sync.stop()


def test_heartbeat_reply_is_handed_on_and_pictures_go_with_their_people(
    zones_server: ZonesServer, tmp_path: Path
) -> None:
    zones_server.reply = HeartbeatReply(site_config_version=7, pictures_wanted=["cam"])
    replies: list[HeartbeatReply] = []
    outbox = Outbox(tmp_path / "spool", max_bytes=10_000_000)
    uploader = Uploader(
        outbox,
        base_url=zones_server.url,
        token="t",
        timeout_s=2,
        tuning=UploadTuning(heartbeat_s=60),
        heartbeat_body=lambda: {"cameras": [], "site_name": "演示工地"},
        on_heartbeat_reply=replies.append,
    )
    try:
        assert uploader.heartbeat() is True
        assert replies == [zones_server.reply]
        assert zones_server.heartbeats[0]["site_name"] == "演示工地"
        assert uploader.put_picture("cam", b"\xff\xd8jpeg", json.dumps([[0.1, 0.2, 0.3, 0.4]]))
        assert zones_server.pictures == [("cam", b"\xff\xd8jpeg", "[[0.1, 0.2, 0.3, 0.4]]")]
    finally:
        uploader.stop()
        outbox.close()


# -- config check ----------------------------------------------------------------------------

SITE_YAML = """\
site: {id: s1}
cameras:
  - id: gate
    source: x.mp4
    zones:
      restricted:
        - {name: yard, polygon: [[0, 0], [0.5, 0], [0.5, 0.5]]}
  - id: pour
    source: y.mp4
"""


def _check(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["config", "check", *args])
    return result.exit_code, " ".join(result.output.split())


def _zones_file(path: Path, cameras: dict[str, Any], version: int = 5) -> Path:
    path.write_text(json.dumps({"version": version, "cameras": cameras}), encoding="utf-8")
    return path


def test_config_check_merges_the_servers_zones(tmp_path: Path) -> None:
    config = tmp_path / "site.yaml"
    config.write_text(SITE_YAML, encoding="utf-8")
    code, output = _check(str(config))
    assert code == 0 and "site 's1', 2 camera(s)" in output and "server zones" not in output

    zones = _zones_file(tmp_path / "z.json", {"pour": {"restricted": [PIT]}, "ghost": {}})
    code, output = _check(str(config), "--zones", str(zones))
    assert code == 0, output
    assert f"server zones v5 ({zones}) for camera(s) pour;" in output
    assert "camera 'ghost' of the server's zones is not in this config: ignored" in output

    bow_tie = {"name": "bow-tie", "polygon": [[0.1, 0.1], [0.5, 0.5], [0.5, 0.1], [0.1, 0.5]]}
    bad = _zones_file(tmp_path / "bad.json", {"pour": {"restricted": [bow_tie]}})
    code, output = _check(str(config), "--zones", str(bad))
    assert code == 1
    assert "cameras.pour.restricted[0]: zone 'bow-tie': invalid polygon" in output

    # without --zones: the box's kept file in its spool, when there is one
    (tmp_path / "spool").mkdir()
    _zones_file(tmp_path / "spool" / SITE_ZONES_NAME, {"gate": {"edges": [EDGE]}}, version=9)
    code, output = _check(str(config))
    assert code == 0 and "server zones v9" in output and "for camera(s) gate" in output
    code, output = _check(str(config), "--zones", str(tmp_path / "missing.json"))
    assert code == 1 and "missing.json: file not found" in output
