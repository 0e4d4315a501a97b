"""Video reading at the file's own timestamps; damaged files; the frame sampler; MP4 out."""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import av
import numpy as np
import pytest

from sitewatch.edge.frame_sampler import FrameSampler
from sitewatch.edge.mp4 import Mp4Writer
from sitewatch.edge.prefetch import Prefetch
from sitewatch.edge.video import EPOCH, VideoError, VideoFrame, VideoReader


def test_frames_carry_their_presentation_times(video_dir: Path) -> None:
    with VideoReader(video_dir / "concrete-pour-crew.mp4") as reader:
        assert reader.frame_wh == (640, 360)
        assert reader.fps == pytest.approx(29.97, abs=0.01)
        assert reader.time_origin() == datetime(2022, 10, 21, 15, 34, 5, tzinfo=UTC)
        times = []
        for frame in reader.frames():
            times.append(frame.time_s)
            if frame.index == 0:
                assert frame.bgr().shape == (360, 640, 3)
            if frame.index == 59:
                break
    assert times[0] == 0.0
    assert np.allclose(np.diff(times), 1001 / 30000)
    assert reader.stopped_at_s is None


def test_a_video_without_creation_time_starts_at_the_epoch(video_dir: Path) -> None:
    with VideoReader(video_dir / "turnstile-a.mp4") as reader:
        assert reader.creation_time is None
        assert reader.time_origin() == EPOCH


def test_missing_and_corrupt_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(VideoError, match=r"not found: .*nothing\.mp4"):
        VideoReader(tmp_path / "nothing.mp4")
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00\x01 not a video " * 500)
    with pytest.raises(VideoError, match=r"junk\.mp4"):
        VideoReader(junk)


def test_a_truncated_file_is_read_up_to_the_damage(
    video_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = (video_dir / "concrete-pour-crew.mp4").read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 4])
    with caplog.at_level(logging.WARNING), VideoReader(cut) as reader:
        count = sum(1 for _ in reader.frames())
    assert 30 < count < 900
    assert reader.stopped_at_s is not None
    assert 1.0 < reader.stopped_at_s < 29.0
    assert f"stopped at {reader.stopped_at_s:.2f} s" in caplog.text
    assert "cut.mp4" in caplog.text


@pytest.mark.parametrize(("fps", "expected"), [(5.0, 50), (0.0, 300), (30.0, 300), (1.0, 10)])
def test_sampler_picks_frames_on_a_fixed_grid(fps: float, expected: int) -> None:
    sampler = FrameSampler(fps)
    times = [i * 1001 / 30000 for i in range(300)]  # 10 s of 29.97 fps
    picked = [t for t in times if sampler.take(t)]
    assert abs(len(picked) - expected) <= 1
    if fps and fps < 29.97:
        gaps = np.diff(picked)
        assert gaps.min() >= 1 / fps - 1 / 29.97 and gaps.max() <= 1 / fps + 1 / 29.97


def test_mp4_writer_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "out.mp4"
    with Mp4Writer(path, fps=10, frame_wh=(65, 49)) as writer:  # odd sizes are cropped
        for i in range(20):
            writer.write(np.full((49, 65, 3), i * 10, np.uint8), time_s=i / 10)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.name, stream.width, stream.height) == ("h264", 64, 48)
        frames = list(container.decode(stream))
    assert len(frames) == 20
    last = frames[-1]
    assert last.pts is not None and last.time_base is not None
    assert float(last.pts * last.time_base) == pytest.approx(1.9, abs=0.01)


def test_prefetch_gives_the_frames_in_order_with_the_same_pixels(video_dir: Path) -> None:
    def first_frames(reader: VideoReader) -> Iterator[VideoFrame]:
        for frame in reader.frames():
            if frame.index >= 45:
                return
            frame.bgr()  # converted in the decoding thread
            yield frame

    with VideoReader(video_dir / "concrete-pour-crew.mp4") as reader:
        inline = [(f.index, f.time_s, f.bgr()) for f in first_frames(reader)]
    with (
        VideoReader(video_dir / "concrete-pour-crew.mp4") as reader,
        Prefetch(first_frames(reader), depth=3) as frames,
    ):
        ahead = [(f.index, f.time_s, f.bgr()) for f in frames]
        assert next(frames, None) is None  # stays finished
    assert [(i, t) for i, t, _ in ahead] == [(i, t) for i, t, _ in inline]
    assert all(np.array_equal(a, b) for (_, _, a), (_, _, b) in zip(ahead, inline, strict=True))
    assert frames.busy_s > 0


def test_prefetch_raises_the_producer_error_and_stops_when_closed() -> None:
    def failing() -> Iterator[int]:
        yield 1
        yield 2
        raise OSError("disk gone")

    with Prefetch(failing(), depth=1) as items:
        assert next(items) == 1
        assert next(items) == 2
        with pytest.raises(OSError, match="disk gone"):
            next(items)

    closed = threading.Event()
    produced: list[int] = []

    def endless() -> Iterator[int]:
        try:
            for i in itertools.count():
                produced.append(i)
                yield i
        finally:
            closed.set()

    prefetch = Prefetch(endless(), depth=2)
    assert [next(prefetch) for _ in range(3)] == [0, 1, 2]
    prefetch.close()
    assert closed.is_set()  # the source was closed by its thread before close() returned
    assert len(produced) <= 3 + 2 + 1  # no more than depth (+1 in hand) ahead
    assert not prefetch._thread.is_alive()
    with pytest.raises(ValueError, match="depth"):
        Prefetch(iter([1]), depth=0)
