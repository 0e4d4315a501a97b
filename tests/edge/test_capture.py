"""Capture from real sources: video files, a real RTSP server (gst-rtsp-server), an HTTP
MJPEG stream; newest-frame semantics, reconnects, a dead camera next to a live one."""

from __future__ import annotations

import contextlib
import http.server
import itertools
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar

import av
import cv2
import pytest

from sitewatch.edge.capture import CaptureThread, CaptureTuning
from tests.conftest import shared_file
from tests.rtsp_server import RtspServer, free_port, system_rtsp_available

FAST = CaptureTuning(open_timeout_s=3, read_timeout_s=2, reconnect_min_s=0.2, reconnect_max_s=1)


def wait_for(condition: Callable[[], object], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def short_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first second of a real video (stream copy)."""
    if shutil.which("ffmpeg") is None:
        pytest.skip("needs ffmpeg (scripts/setup.sh)")
    src = shared_file("data/videos/barrier-walkway.mp4")
    out = tmp_path_factory.mktemp("clips") / "one-second.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(src), "-t", "1", "-c", "copy", str(out)], check=True
    )
    return out


@contextlib.contextmanager
def run_capture(thread: CaptureThread) -> Iterator[CaptureThread]:
    thread.start()
    try:
        yield thread
    finally:
        thread.stop()
        thread.join(5)


def test_file_is_paced_like_a_camera_and_ends_without_loop(short_clip: Path) -> None:
    frames: list[datetime] = []
    capture = CaptureThread(
        "file", str(short_clip), tuning=FAST, on_frame=lambda f: frames.append(f.captured_at)
    )
    with run_capture(capture):
        wait_for(lambda: capture.state.ended, 10, "end of file")
    with av.open(str(short_clip)) as container:
        stream = container.streams.video[0]
        n_frames = sum(1 for _ in container.decode(stream))
        duration_s = (
            float(stream.duration * stream.time_base)
            if stream.duration and stream.time_base
            else 1.0
        )
    assert len(frames) == n_frames  # every frame, once
    span_s = (frames[-1] - frames[0]).total_seconds()
    assert span_s >= 0.8 * duration_s  # played at real time, not decoded as fast as possible
    assert not capture.state.online and capture.state.error == "end of file"


def test_looped_file_keeps_going(short_clip: Path) -> None:
    capture = CaptureThread("loop", str(short_clip), loop=True, tuning=FAST)
    with run_capture(capture):
        wait_for(lambda: (f := capture.slot.latest()) is not None and f.seq > 40, 10, "2nd pass")
        assert capture.state.online and not capture.state.ended
        image = capture.slot.latest().bgr()  # type: ignore[union-attr]
        assert image.shape == (480, 586, 3)


def test_a_slow_consumer_always_gets_the_newest_frame(short_clip: Path) -> None:
    capture = CaptureThread("slow", str(short_clip), loop=True, tuning=FAST)
    seqs: list[int] = []
    ages_s: list[float] = []
    with run_capture(capture):
        last = 0
        for _ in range(4):
            frame = capture.slot.wait_newer(last, timeout_s=5)
            assert frame is not None
            ages_s.append((datetime.now(UTC) - frame.captured_at).total_seconds())
            seqs.append(last := frame.seq)
            time.sleep(0.4)  # "inference" much slower than the camera
    assert all(b - a >= 5 for a, b in itertools.pairwise(seqs))  # frames skipped
    # No growing lag: a queue would hand out frames 0.4, 0.8, 1.2 s old by now.
    assert max(ages_s) < 0.35
    assert capture.slot.overwritten >= 15


@pytest.fixture
def rtsp_video(tmp_path: Path) -> Path:
    reason = system_rtsp_available()
    if reason:
        pytest.skip(reason)
    return RtspServer.looped_copy(
        shared_file("data/videos/barrier-walkway.mp4"), tmp_path / "loop.mp4", 2
    )


@pytest.mark.slow
def test_rtsp_camera_reconnects_after_the_server_restarts(rtsp_video: Path) -> None:
    server = RtspServer(rtsp_video).start()
    capture = CaptureThread("rtsp", server.url, tuning=FAST)
    try:
        with run_capture(capture):
            wait_for(lambda: capture.state.online, 15, "online")
            wait_for(lambda: (f := capture.slot.latest()) is not None and f.seq > 10, 10, "frames")
            server.stop()
            wait_for(lambda: not capture.state.online, 10, "offline after the server stopped")
            offline_since = capture.state.since
            seq_when_down = capture.slot.latest().seq  # type: ignore[union-attr]
            time.sleep(1.5)  # a few failed reconnects
            assert capture.state.reconnects >= 2 and capture.state.error
            server.start()
            wait_for(lambda: capture.state.online, 15, "back online")
            wait_for(lambda: capture.slot.latest().seq > seq_when_down + 10, 10, "new frames")  # type: ignore[union-attr]
            assert capture.state.since > offline_since
            assert capture.slot.latest().bgr().shape == (480, 586, 3)  # type: ignore[union-attr]
    finally:
        server.stop()


@pytest.mark.slow
def test_a_stalled_rtsp_stream_times_out_and_recovers(rtsp_video: Path) -> None:
    """The server stops sending but keeps the connection open: the read timeout fires."""
    server = RtspServer(rtsp_video).start()
    capture = CaptureThread("stall", server.url, tuning=FAST)
    try:
        with run_capture(capture):
            wait_for(lambda: (f := capture.slot.latest()) is not None and f.seq > 10, 15, "frames")
            server.pause()
            stalled_at = time.monotonic()
            wait_for(lambda: not capture.state.online, 15, "offline after the read timeout")
            assert time.monotonic() - stalled_at < FAST.read_timeout_s + 8  # not hung
            server.resume()
            wait_for(lambda: capture.state.online, 20, "back online")
    finally:
        server.resume()
        server.stop()


def test_a_dead_camera_does_not_stop_the_others(short_clip: Path) -> None:
    dead = CaptureThread("dead", f"rtsp://127.0.0.1:{free_port()}/nothing", tuning=FAST)
    alive = CaptureThread("alive", str(short_clip), loop=True, tuning=FAST)
    with run_capture(dead), run_capture(alive):
        wait_for(lambda: dead.state.reconnects >= 2, 10, "dead camera retries")
        wait_for(lambda: (f := alive.slot.latest()) is not None and f.seq > 30, 10, "frames")
        assert not dead.state.online and "Connection refused" in (dead.state.error or "")
        assert alive.state.online and dead.is_alive()


class _MjpegHandler(http.server.BaseHTTPRequestHandler):
    jpegs: ClassVar[list[bytes]] = []

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
        self.end_headers()
        try:
            for i in range(200):
                jpeg = self.jpegs[i % len(self.jpegs)]
                self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\n")
                self.wfile.write(f"Content-Length: {len(jpeg)}\r\n\r\n".encode() + jpeg + b"\r\n")
                time.sleep(0.04)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, *args: object) -> None:
        pass


def test_http_mjpeg_stream(short_clip: Path) -> None:
    with av.open(str(short_clip)) as container:
        _MjpegHandler.jpegs = [
            cv2.imencode(".jpg", f.to_ndarray(format="bgr24"))[1].tobytes()
            for f in container.decode(video=0)
        ]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _MjpegHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/stream.mjpg"
    capture = CaptureThread("mjpeg", url, tuning=FAST)
    try:
        with run_capture(capture):
            wait_for(lambda: (f := capture.slot.latest()) is not None and f.seq > 10, 15, "frames")
            assert capture.state.online
            assert capture.slot.latest().bgr().shape == (480, 586, 3)  # type: ignore[union-attr]
    finally:
        server.shutdown()
        server.server_close()
