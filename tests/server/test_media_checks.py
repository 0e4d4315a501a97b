"""Media content checks (issue 15): decompression bombs refused from their header
(defect 1), uploads checked by their content and not only their first bytes (defect 10),
stale staged uploads removed (defect 8b), and only an event's device adds its media."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import ImageFile
from sqlalchemy import select

from sitewatch.server.db.models import Media, MediaKind, Role
from sitewatch.server.media import LocalMediaStore, remove_stale_parts
from sitewatch.server.media_checks import MediaLimits, MediaProblem, check_clip, check_image
from tests.server.conftest import ServerEnv, event_json, post_event, write_clip

LIMITS = MediaLimits()
CONSENT = {"consent_given": "true", "consent_method": "signed form"}
HTML = b"<!doctype html><html><body><script>alert(1)</script></body></html>" * 4


def _declaring(jpeg: bytes, width: int, height: int) -> bytes:
    """``jpeg`` with its frame header (SOFn) patched to declare ``width`` x ``height``."""
    at = 2
    while jpeg[at + 1] not in (0xC0, 0xC1, 0xC2):  # walk the segments up to the frame
        at += 2 + int.from_bytes(jpeg[at + 2 : at + 4], "big")
    size = height.to_bytes(2, "big") + width.to_bytes(2, "big")
    return jpeg[: at + 5] + size + jpeg[at + 9 :]


def _clip(path: Path, codec: str, **options: str) -> bytes:
    write_clip(str(path), codec, **options)
    return path.read_bytes()


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """An MPEG-4 Part 2 clip, and an H.264 clip with its index first (FFmpeg faststart)."""
    folder = tmp_path_factory.mktemp("clips")
    return {
        "mpeg4": _clip(folder / "mpeg4.mp4", "mpeg4"),
        "faststart": _clip(folder / "faststart.mp4", "libx264", movflags="faststart"),
    }


@pytest.fixture
def no_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    """Decoding any image's pixels with Pillow fails the test."""

    def load(self: Any) -> None:
        raise AssertionError("the image was decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", load)


# -- unit checks ----------------------------------------------------------------------


@pytest.mark.parametrize("size", [(20000, 20000), (7000, 7000), (13000, 8)])
def test_image_too_large_by_its_header_is_413_before_decoding(
    jpeg_bytes: bytes, size: tuple[int, int], no_decoding: None
) -> None:
    with pytest.raises(MediaProblem) as refused:
        check_image(_declaring(jpeg_bytes, *size), limits=LIMITS, what="photo")
    assert refused.value.status == 413 and refused.value.reason.startswith("photo")


def test_image_limits_are_the_callers(jpeg_bytes: bytes) -> None:
    info = check_image(jpeg_bytes, limits=MediaLimits(max_pixels=64 * 48, max_side=64))
    assert (info.format, info.width, info.height) == ("JPEG", 64, 48)
    for limits in (MediaLimits(max_side=63), MediaLimits(max_pixels=64 * 48 - 1)):
        with pytest.raises(MediaProblem) as refused:
            check_image(jpeg_bytes, limits=limits)
        assert refused.value.status == 413


BROKEN_JPEGS: dict[str, Callable[[bytes], bytes]] = {
    "magic-only": lambda _jpeg: b"\xff\xd8\xff",
    "truncated": lambda jpeg: jpeg[: len(jpeg) * 2 // 3],
    "html-after-magic": lambda _jpeg: b"\xff\xd8\xff\xe0" + HTML,
    "html-after-header": lambda jpeg: jpeg[:200] + HTML,
    "zero-size-header": lambda jpeg: _declaring(jpeg, 0, 48),
}


@pytest.mark.parametrize("make", BROKEN_JPEGS.values(), ids=BROKEN_JPEGS.keys())
def test_broken_jpeg_is_422(jpeg_bytes: bytes, make: Callable[[bytes], bytes]) -> None:
    with pytest.raises(MediaProblem) as refused:
        check_image(make(jpeg_bytes), limits=LIMITS)
    assert refused.value.status == 422


MakeClip = Callable[[bytes, dict[str, bytes]], bytes]
#: name: (the bytes from the good clip and the ``clips`` fixture, a word of the reason)
BROKEN_CLIPS: dict[str, tuple[MakeClip, str]] = {
    "ftyp-then-garbage": (lambda _mp4, _c: b"\x00\x00\x00\x18ftypisom" + os.urandom(512), "MP4"),
    "mpeg4-part-2": (lambda _mp4, clips: clips["mpeg4"], "H.264"),
    "truncated-index-last": (lambda mp4, _clips: mp4[: len(mp4) // 2], "MP4"),
    "truncated-index-first": (lambda _mp4, clips: clips["faststart"][:-60], "truncated"),
    "jpeg": (lambda _mp4, _clips: b"\xff\xd8\xff\xe0" + HTML, "MP4"),
}


@pytest.mark.parametrize("make, word", BROKEN_CLIPS.values(), ids=BROKEN_CLIPS.keys())
def test_broken_clip_is_422(
    tmp_path: Path, mp4_bytes: bytes, clips: dict[str, bytes], make: MakeClip, word: str
) -> None:
    path = tmp_path / "clip.mp4"
    path.write_bytes(make(mp4_bytes, clips))
    with pytest.raises(MediaProblem) as refused:
        check_clip(path, limits=LIMITS)
    assert refused.value.status == 422 and word in refused.value.reason, refused.value.reason


def test_h264_clip_passes_within_limits(tmp_path: Path, mp4_bytes: bytes) -> None:
    path = tmp_path / "clip.mp4"
    path.write_bytes(mp4_bytes)
    info = check_clip(path, limits=LIMITS)
    assert (info.codec, info.width, info.height, info.duration_s) == ("h264", 64, 48, 1.0)
    with pytest.raises(MediaProblem) as too_wide:
        check_clip(path, limits=MediaLimits(max_side=32))
    with pytest.raises(MediaProblem) as too_long:
        check_clip(path, limits=MediaLimits(max_clip_seconds=0.5))
    assert (too_wide.value.status, too_long.value.status) == (413, 422)


def test_stale_parts_are_removed_when_the_store_is_created(tmp_path: Path) -> None:
    staging = tmp_path / "media" / ".incoming"
    staging.mkdir(parents=True)
    two_hours_ago = time.time() - 7200
    for name in ("up-old.part", "notes.txt", "up-fresh.part"):
        (staging / name).write_bytes(b"partial upload")
        if name != "up-fresh.part":
            os.utime(staging / name, (two_hours_ago, two_hours_ago))
    store = LocalMediaStore(tmp_path / "media")
    assert sorted(p.name for p in store.staging_dir().iterdir()) == ["notes.txt", "up-fresh.part"]
    assert remove_stale_parts(staging, max_age_s=60, now=time.time() + 120) == 1
    assert sorted(p.name for p in staging.iterdir()) == ["notes.txt"]


# -- through the API --------------------------------------------------------------------


def _reader(env: ServerEnv) -> TestClient:
    return env.user(f"admin-{uuid.uuid4().hex[:6]}", Role.ADMIN, ["site-a"])


def _device_event(env: ServerEnv) -> tuple[TestClient, str]:
    device = env.device("site-a")
    body = event_json("site-a")
    assert post_event(device, body).status_code == 201
    return device, f"/api/v1/events/{body['event_id']}"


def _media_row(env: ServerEnv, url: str, kind: str) -> Media | None:
    event_id = uuid.UUID(url.split("/")[-1])
    with env.database.session() as db:
        return db.scalar(
            select(Media).where(Media.event_id == event_id, Media.kind == MediaKind(kind))
        )


def _stored_files(env: ServerEnv) -> list[str]:
    return sorted(p.name for p in env.settings.resolved_media_dir.rglob("*") if p.is_file())


def _put(device: TestClient, url: str, kind: str, data: bytes) -> Any:
    name, content_type = ("c.mp4", "video/mp4") if kind == "clip" else ("s.jpg", "image/jpeg")
    return device.put(f"{url}/media/{kind}", files={"file": (name, data, content_type)})


def _upload_bomb(env: ServerEnv, route: str, bomb: bytes) -> Any:
    if route == "snapshot":
        device, url = _device_event(env)
        return _put(device, url, "snapshot", bomb)
    reviewer = env.user("rita", Role.REVIEWER, ["site-a"])
    if route == "enrolment":
        return reviewer.post(
            "/api/v1/workers/site-a",
            data={"worker_id": "w-1", "name": "Ann", **CONSENT},
            files=[("photos", ("face.jpg", bomb, "image/jpeg"))],
        )
    _device, url = _device_event(env)
    assert reviewer.post(f"{url}/verdict", json={"verdict": "confirmed"}).status_code == 200
    assign = {"responsible": "Foreman Li", "deadline": "2099-05-03T00:00:00Z"}
    assert reviewer.post(f"{url}/hazard", json=assign).status_code == 200
    answer = reviewer.post(
        f"{url}/hazard/evidence", files={"file": ("fixed.jpg", bomb, "image/jpeg")}
    )
    assert reviewer.get(f"{url}/hazard").json()["status"] == "assigned"
    return answer


@pytest.mark.parametrize("route", ["snapshot", "evidence", "enrolment"])
def test_decompression_bomb_is_413_on_every_upload(
    server_env: ServerEnv, jpeg_bytes: bytes, route: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sitewatch.server.services import workers

    def no_embedder() -> None:
        raise AssertionError("the photo reached the face models")

    monkeypatch.setattr(workers, "photo_embedder", no_embedder)
    bomb = _declaring(jpeg_bytes, 20000, 20000)
    answer = _upload_bomb(server_env, route, bomb)
    assert answer.status_code == 413, answer.text
    assert "pixels" in answer.json()["detail"]
    assert _stored_files(server_env) == []


DEVICE_FAKES: dict[str, tuple[str, MakeClip]] = {
    "snapshot-magic-only": ("snapshot", lambda _media, _clips: b"\xff\xd8\xff"),
    "snapshot-truncated": ("snapshot", lambda jpeg, _clips: jpeg[: len(jpeg) // 2]),
    "face-html": ("face", lambda _media, _clips: b"\xff\xd8\xff\xe0" + HTML),
    "clip-ftyp-garbage": ("clip", BROKEN_CLIPS["ftyp-then-garbage"][0]),
    "clip-mpeg4": ("clip", BROKEN_CLIPS["mpeg4-part-2"][0]),
    "clip-truncated": ("clip", BROKEN_CLIPS["truncated-index-last"][0]),
}


@pytest.mark.parametrize("kind, make", DEVICE_FAKES.values(), ids=DEVICE_FAKES.keys())
def test_device_media_with_bad_content_is_422_and_recorded(
    server_env: ServerEnv,
    jpeg_bytes: bytes,
    mp4_bytes: bytes,
    clips: dict[str, bytes],
    kind: str,
    make: MakeClip,
) -> None:
    device, url = _device_event(server_env)
    good = mp4_bytes if kind == "clip" else jpeg_bytes
    refused = _put(device, url, kind, make(good, clips))
    assert refused.status_code == 422 and "event is kept" in refused.json()["detail"]
    row = _media_row(server_env, url, kind)
    assert row is not None and row.problem, "the problem is recorded on the media row"
    assert _stored_files(server_env) == []  # no bytes kept, no staged file left
    reader = _reader(server_env)
    assert reader.get(url).status_code == 200  # the event itself is kept
    assert reader.get(f"{url}/media/{kind}").status_code == 404

    first, again = _put(device, url, kind, good), _put(device, url, kind, good)
    assert (first.status_code, first.json()["changed"]) == (200, True)
    assert (again.status_code, again.json()["changed"]) == (200, False)
    row = _media_row(server_env, url, kind)
    assert row is not None and row.problem is None and row.deleted_at is None
    download = reader.get(f"{url}/media/{kind}")
    assert download.status_code == 200 and download.content == good


def test_bad_upload_does_not_replace_a_good_one(server_env: ServerEnv, jpeg_bytes: bytes) -> None:
    device, url = _device_event(server_env)
    assert _put(device, url, "snapshot", jpeg_bytes).status_code == 200
    refused = _put(device, url, "snapshot", jpeg_bytes[:300] + HTML)
    assert refused.status_code == 422 and "stored before is kept" in refused.json()["detail"]
    download = _reader(server_env).get(f"{url}/media/snapshot")
    assert download.status_code == 200 and download.content == jpeg_bytes


def test_media_limits_come_from_the_settings(
    server_env: ServerEnv, jpeg_bytes: bytes, mp4_bytes: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(server_env.settings, "max_image_side", 32)
    device, url = _device_event(server_env)
    assert _put(device, url, "snapshot", jpeg_bytes).status_code == 413
    assert _put(device, url, "clip", mp4_bytes).status_code == 413
    monkeypatch.setattr(server_env.settings, "max_image_side", 64)
    assert _put(device, url, "snapshot", jpeg_bytes).status_code == 200


def test_only_the_sending_device_uploads_media(server_env: ServerEnv, jpeg_bytes: bytes) -> None:
    sender, url = _device_event(server_env)
    neighbour = server_env.device("site-a", name="box-2")
    refused = _put(neighbour, url, "snapshot", jpeg_bytes)
    assert refused.status_code == 403 and "another device" in refused.json()["detail"]
    assert _media_row(server_env, url, "snapshot") is None
    assert _put(sender, url, "snapshot", jpeg_bytes).status_code == 200
