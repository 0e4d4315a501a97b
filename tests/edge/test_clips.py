"""Clip ring buffer and the H.264 MP4 writer, on frames of a real video."""

from __future__ import annotations

import itertools
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import av
import numpy as np
import pytest

from sitewatch.edge.clips import BufferedFrame, ClipRecorder, FrameRing, downscale_even
from sitewatch.edge.mp4 import write_clip
from sitewatch.edge.snapshots import encode_jpeg
from tests.edge.live_support import ffprobe

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def real_frames() -> list[np.ndarray]:
    from tests.conftest import shared_file

    path = shared_file("data/videos/barrier-walkway.mp4")
    frames = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            frames.append(frame.to_ndarray(format="bgr24"))
            if len(frames) == 40:
                break
    return frames


def test_ring_is_bounded_by_age_and_bytes_and_keeps_its_rate(real_frames: list[np.ndarray]) -> None:
    ring = FrameRing(max_age_s=2.0, fps=5.0, max_width=320)
    for i, image in enumerate(real_frames):  # 40 frames at 25 fps = 1.6 s of video ...
        ring.add(T0 + timedelta(seconds=i * 0.1), image)  # ... spread over 4 s here
    assert len(ring) == 11  # offered every 0.1 s, kept every 0.2 s (5 fps), over the last 2 s
    kept = ring.since(T0)
    gaps = [(b.captured_at - a.captured_at).total_seconds() for a, b in itertools.pairwise(kept)]
    assert min(gaps) >= 0.18 - 1e-6 or len(kept) < 2
    assert (kept[-1].captured_at - kept[0].captured_at).total_seconds() <= 2.0
    assert kept[0].decode().shape[1] == 320  # stored downscaled

    small = FrameRing(max_age_s=100.0, fps=100.0, max_bytes=60_000)
    for i, image in enumerate(real_frames):
        small.add(T0 + timedelta(seconds=i), image)
    assert small.nbytes <= 60_000 and 0 < len(small) < len(real_frames)


def test_write_mp4_makes_browser_playable_h264_with_faststart(
    tmp_path: Path, real_frames: list[np.ndarray]
) -> None:
    ring = FrameRing(max_age_s=60, fps=10.0)
    for i, image in enumerate(real_frames[:30]):
        ring.add(T0 + timedelta(seconds=i * 0.1), image)
    path = write_clip(ring.since(T0), tmp_path / "clip.mp4", fps=10)

    info = ffprobe(path)
    assert info["codec_name"] == "h264" and info["pix_fmt"] == "yuv420p"
    assert (int(info["width"]), int(info["height"])) == (586, 480)
    assert int(info["nb_frames"]) == 30
    assert 2.8 <= float(info["duration"]) <= 3.2
    head = path.read_bytes()[:4096]
    assert head[4:8] == b"ftyp" and b"moov" in head  # moov before mdat: plays while loading
    assert not list(tmp_path.glob(".*part"))


def test_downscale_even_keeps_sides_even() -> None:
    image = np.zeros((1081, 1921, 3), np.uint8)
    out = downscale_even(image, 1280)
    assert out.shape[1] <= 1280 and out.shape[0] % 2 == 0 and out.shape[1] % 2 == 0


def test_recorder_takes_pre_roll_and_post_roll(
    tmp_path: Path, real_frames: list[np.ndarray]
) -> None:
    ring = FrameRing(max_age_s=3.0, fps=10.0, max_width=320)
    done: list[tuple[str, Path | None]] = []
    finished = threading.Event()

    def on_done(event_id: str, path: Path | None) -> None:
        done.append((event_id, path))
        finished.set()

    with ThreadPoolExecutor(1) as encoder:
        recorder = ClipRecorder(ring, encoder, fps=10.0)
        times = [T0 + timedelta(seconds=i * 0.1) for i in range(len(real_frames))]
        for when, image in zip(times[:20], real_frames[:20], strict=True):
            ring.add(when, image)
        event_at = times[19]  # pre-roll 1 s (10 frames), post-roll 1 s
        recorder.request(
            "e1",
            event_at - timedelta(seconds=1),
            event_at + timedelta(seconds=1),
            tmp_path / "e1.mp4",
            on_done,
        )
        for when, image in zip(times[20:], real_frames[20:], strict=True):
            ring.add(when, image)
        assert finished.wait(30)
    assert done[0][0] == "e1" and done[0][1] == tmp_path / "e1.mp4"
    info = ffprobe(tmp_path / "e1.mp4")
    assert int(info["nb_frames"]) == 21  # t-1 s .. t+1 s inclusive at 10 fps
    assert recorder.pending_count == 0


def test_flush_finishes_a_pending_clip_with_what_it_has(
    tmp_path: Path, real_frames: list[np.ndarray]
) -> None:
    ring = FrameRing(max_age_s=5.0, fps=10.0, max_width=320)
    done: list[Path | None] = []
    with ThreadPoolExecutor(1) as encoder:
        recorder = ClipRecorder(ring, encoder)
        for i, image in enumerate(real_frames[:8]):
            ring.add(T0 + timedelta(seconds=i * 0.1), image)
        recorder.request(
            "e2",
            T0,
            T0 + timedelta(seconds=30),
            tmp_path / "e2.mp4",
            lambda _eid, path: done.append(path),
        )
        recorder.flush()
    assert done == [tmp_path / "e2.mp4"]
    assert int(ffprobe(tmp_path / "e2.mp4")["nb_frames"]) == 8


def test_clip_frames_closer_than_a_frame_period_are_all_written(tmp_path: Path) -> None:
    """Frames 30 ms apart in a 10 fps clip (a burst in the ring): each keeps its own time
    (the encoder counts in ms) instead of two sharing a pts, which muxing refuses."""

    image = np.zeros((96, 128, 3), np.uint8)
    frames = [
        BufferedFrame(T0 + timedelta(milliseconds=30 * i), encode_jpeg(image)) for i in range(20)
    ]
    path = write_clip(frames, tmp_path / "burst.mp4", fps=10)
    with av.open(str(path)) as container:
        assert sum(1 for _ in container.decode(video=0)) == 20
