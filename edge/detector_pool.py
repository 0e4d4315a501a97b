"""Several ONNX Runtime sessions of one model, so frames are detected side by side.

A small YOLO model does not keep two cores busy with one session: its layers are too small
for ONNX Runtime's intra-op threads to split well. Measured on the 2-core test machine with
the project's model at 416x256 (docs/evaluation.md): one session with 2 threads took 14.1-
14.4 ms a frame, two sessions of 1 thread each running side by side 10.6-10.7 ms a frame,
with bit-identical outputs. So where one reader feeds the model (a replay, an evaluation),
the default is one single-threaded session per usable core (at most
:data:`MAX_AUTO_SESSIONS`). The live edge box is different: its camera threads already call
the model at the same time, and on the test machine a pool ran no more detections a second
than one shared session (38-42/s with 10 RTSP cameras either way, docs/evaluation.md), with
a slower single frame (31 vs 24 ms with one camera), so there the default stays one session.

:class:`DetectorPool` has the :class:`edge.detector.Detector` interface: ``detect()`` borrows
an idle session (so camera threads can share a pool set with ``model.sessions``);
``submit()`` runs a frame in the pool's own threads and returns a future, which lets a replay
keep every session busy while it tracks earlier frames in order (:class:`DetectionsAhead`).
"""

from __future__ import annotations

import logging
import os
import queue
import time
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Protocol, TypeVar

import numpy as np

from sitewatch.edge.config import ModelConfig
from sitewatch.edge.detections import Detections
from sitewatch.edge.detector import Detector

logger = logging.getLogger(__name__)

#: Sessions chosen by ``model.sessions: 0`` at most (each holds its own copy of the model).
MAX_AUTO_SESSIONS = 4
CPU_PROVIDER = "CPUExecutionProvider"

T = TypeVar("T")


class FrameDetector(Protocol):
    """What the pipeline needs of a detector: a plain :class:`Detector` or a pool."""

    model_path: Path
    class_names: list[str]
    input_wh: tuple[int, int]

    def detect(self, frame_bgr: np.ndarray) -> Detections: ...


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def session_layout(
    cfg: ModelConfig, cores: int | None = None, *, concurrent_callers: bool = False
) -> tuple[int, int]:
    """(sessions, intra-op threads per session) for ``cfg``; 0 threads lets ORT choose.

    ``sessions: 0`` picks one session per core (at most MAX_AUTO_SESSIONS) when the model
    runs on the CPU alone and one reader feeds it, else one: an accelerator runs one
    session's frames in turn, and ``concurrent_callers`` (the live edge's cameras) already
    overlap their runs. ``threads: 0`` with several sessions splits the cores between them.
    """
    cores = cores or usable_cores()
    sessions = cfg.sessions
    if sessions == 0 and concurrent_callers:
        sessions = 1
    if sessions == 0:
        cpu_only = list(cfg.providers) == [CPU_PROVIDER]
        per_session = cfg.threads or 1
        sessions = min(MAX_AUTO_SESSIONS, max(1, cores // per_session)) if cpu_only else 1
    threads = cfg.threads
    if threads == 0 and sessions > 1:
        threads = max(1, cores // sessions)
    return sessions, threads


class DetectorPool:
    """``detect()`` / ``submit()`` over several sessions of one model (see the module doc)."""

    def __init__(self, detectors: Sequence[Detector]) -> None:
        if not detectors:
            raise ValueError("a DetectorPool needs at least one detector")
        self.detectors = list(detectors)
        first = self.detectors[0]
        self.model_path = first.model_path
        self.class_names = first.class_names
        self.input_wh = first.input_wh
        self._idle: queue.SimpleQueue[Detector] = queue.SimpleQueue()
        for detector in self.detectors:
            self._idle.put(detector)
        self._executor: ThreadPoolExecutor | None = None

    @property
    def sessions(self) -> int:
        return len(self.detectors)

    def detect(self, frame_bgr: np.ndarray) -> Detections:
        """Detect on one frame with the next idle session (waits while all are busy)."""
        detector = self._idle.get()
        try:
            return detector.detect(frame_bgr)
        finally:
            self._idle.put(detector)

    def submit(self, frame_bgr: np.ndarray) -> Future[Detections]:
        """Detect on one frame in the pool's threads (one per session)."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self.sessions, thread_name_prefix="detect")
        return self._executor.submit(self.detect, frame_bgr)

    def close(self) -> None:
        """Stop the pool's threads (after the frames submitted are done)."""
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None


def load_detector(
    cfg: ModelConfig, config_path: Path | None = None, *, concurrent_callers: bool = False
) -> Detector | DetectorPool:
    """A plain detector for one session, else a pool (see :func:`session_layout`)."""
    sessions, threads = session_layout(cfg, concurrent_callers=concurrent_callers)
    if sessions == 1:
        return Detector.from_config(cfg, config_path, threads=threads)
    detectors = [Detector.from_config(cfg, config_path, threads=threads) for _ in range(sessions)]
    logger.info(
        "%s: %d sessions of %s thread(s) each",
        detectors[0].model_path.name,
        sessions,
        threads or "auto",
    )
    return DetectorPool(detectors)


class DetectionsAhead(Iterable[tuple[T, Detections | None]]):
    """Items with their frame's detections, in order, the pool working ahead of the reader.

    ``items`` gives (item, frame or None); a None frame is passed through undetected.
    Up to ``depth`` frames are in the pool at once, and at most ``depth * 4`` items are
    held (bounded memory when most frames are not detected). :attr:`wait_s` is the time
    the reader waited for detections (the model's share of the reader's time).
    """

    def __init__(
        self, pool: DetectorPool, items: Iterable[tuple[T, np.ndarray | None]], depth: int
    ) -> None:
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        self._pool = pool
        self._items = iter(items)
        self._depth = depth
        self.wait_s = 0.0

    def __iter__(self) -> Iterator[tuple[T, Detections | None]]:
        pending: deque[tuple[T, Future[Detections] | None]] = deque()
        in_flight = 0
        exhausted = False
        held = self._depth * 4
        try:
            while True:
                while not exhausted and in_flight < self._depth and len(pending) < held:
                    nxt = next(self._items, None)
                    if nxt is None:
                        exhausted = True
                        break
                    item, frame = nxt
                    future = self._pool.submit(frame) if frame is not None else None
                    in_flight += future is not None
                    pending.append((item, future))
                if not pending:
                    return
                item, future = pending.popleft()
                if future is None:
                    yield item, None
                    continue
                started = time.perf_counter()
                detections = future.result()
                self.wait_s += time.perf_counter() - started
                in_flight -= 1
                yield item, detections
        finally:
            for _, future in pending:  # stopped early: drop what is not started yet
                if future is not None:
                    future.cancel()
