"""A real RTSP server for the capture tests: GStreamer's gst-rtsp-server serving an MP4.

Run it with the SYSTEM python (``/usr/bin/python3``, which has PyGObject and the
``GstRtspServer`` typelib from Debian's gir1.2-gst-rtsp-server-1.0), not the venv::

    /usr/bin/python3 tests/rtsp_server.py --port 8554 --mount /cam --file clip.mp4

The file's H.264 stream is sent as is (no re-encoding), paced at real time by the
server's clock. Each client gets its own media from the start of the file; make the file
long enough for a test with :func:`RtspServer.looped_copy` (ffmpeg ``-stream_loop``).
The script prints ``READY rtsp://...`` on stdout once it listens.

The pytest side (:class:`RtspServer`) is plain Python and works from the venv.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

SYSTEM_PYTHON = "/usr/bin/python3"


def _serve(port: int, mount: str, file: Path) -> None:  # pragma: no cover - system python
    import gi

    gi.require_version("Gst", "1.0")
    gi.require_version("GstRtspServer", "1.0")
    from gi.repository import GLib, Gst, GstRtspServer

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(
        f'( filesrc location="{file}" ! qtdemux ! h264parse config-interval=-1 '
        "! rtph264pay name=pay0 pt=96 )"
    )
    factory.set_shared(True)
    server.get_mount_points().add_factory(mount, factory)
    if server.attach(None) == 0:
        raise SystemExit(f"cannot listen on 127.0.0.1:{port}")
    loop = GLib.MainLoop()
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, loop.quit)
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGINT, loop.quit)
    sys.stdout.write(f"READY rtsp://127.0.0.1:{port}{mount}\n")
    sys.stdout.flush()
    loop.run()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RtspServer:
    """Starts and stops the script above in a subprocess; restartable on the same port."""

    def __init__(self, file: Path, *, port: int | None = None, mount: str = "/cam") -> None:
        if not Path(SYSTEM_PYTHON).exists():
            raise FileNotFoundError(f"{SYSTEM_PYTHON} (system python with gi) not found")
        self.file = file
        self.port = port or free_port()
        self.mount = mount
        self._proc: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}{self.mount}"

    def start(self, timeout_s: float = 15.0) -> RtspServer:
        cmd = [SYSTEM_PYTHON, __file__, "--port", str(self.port), "--mount", self.mount]
        cmd += ["--file", str(self.file)]
        env = {k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", "PYTHONPATH"}}
        self._proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)
        assert self._proc.stdout is not None
        deadline = time.monotonic() + timeout_s
        line = self._proc.stdout.readline()
        if not line.startswith("READY") or time.monotonic() > deadline:
            self.stop()
            raise RuntimeError(f"RTSP server did not start: {line!r}")
        return self

    def stop(self) -> None:
        if self._proc is None:
            return
        self._proc.terminate()
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._proc = None

    def pause(self) -> None:
        """SIGSTOP: connections stay open but no data flows (a stalled camera)."""
        assert self._proc is not None
        self._proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self._proc is not None
        self._proc.send_signal(signal.SIGCONT)

    def __enter__(self) -> RtspServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @staticmethod
    def looped_copy(src: Path, dst: Path, loops: int) -> Path:
        """``src`` repeated ``loops`` more times, stream-copied (seconds of CPU at most)."""
        ffmpeg = shutil.which("ffmpeg")
        if ffmpeg is None:
            raise FileNotFoundError("ffmpeg not found (apt-get install ffmpeg)")
        cmd = [ffmpeg, "-v", "error", "-y", "-stream_loop", str(loops), "-i", str(src)]
        cmd += ["-map", "0:v:0", "-c", "copy", str(dst)]
        subprocess.run(cmd, check=True, timeout=60)
        return dst


def system_rtsp_available() -> str | None:
    """None when the system python can serve RTSP, else why not (for pytest.skip)."""
    if not Path(SYSTEM_PYTHON).exists() or shutil.which("ffmpeg") is None:
        return f"needs {SYSTEM_PYTHON} and ffmpeg (scripts/setup.sh installs them)"
    probe = "import gi; gi.require_version('GstRtspServer', '1.0')"
    with contextlib.suppress(subprocess.SubprocessError, OSError):
        done = subprocess.run([SYSTEM_PYTHON, "-c", probe], capture_output=True, timeout=30)
        if done.returncode == 0:
            return None
    return "needs gir1.2-gst-rtsp-server-1.0 and python3-gi (scripts/setup.sh installs them)"


if __name__ == "__main__":  # pragma: no cover - runs under the system python
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--mount", default="/cam")
    parser.add_argument("--file", type=Path, required=True)
    args = parser.parse_args()
    _serve(args.port, args.mount, args.file.resolve())
