"""Running an iterator in a background thread, a bounded number of items ahead."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from typing import Generic, TypeVar

from sitewatch.edge.closing import Closing

T = TypeVar("T")


class _End:
    """What the producer thread of :class:`Prefetch` sends last: its error, if any."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException | None) -> None:
        self.error = error


class Prefetch(Closing, Generic[T]):
    """Runs an iterator in a background thread, at most ``depth`` items ahead of its reader.

    Used to decode video while the caller runs the model on earlier frames (PyAV and ONNX
    Runtime both release the GIL while they work). Items arrive in the iterator's order,
    so results do not depend on the thread; an exception in the iterator is raised to the
    reader at the point it happened. Close it (or use it as a context manager) to stop the
    thread early; ``items`` is only ever advanced by that thread, and is finished or
    closed by it before :meth:`close` returns, so the resources it reads (a
    :class:`VideoReader`) can be closed afterwards.
    """

    def __init__(self, items: Iterator[T], *, depth: int = 4, name: str = "prefetch") -> None:
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        #: Seconds the thread spent producing items, and the reader spent waiting for them.
        self.busy_s = 0.0
        self.wait_s = 0.0
        self._queue: queue.Queue[T | _End] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._done = False
        self._thread = threading.Thread(target=self._run, args=(items,), name=name, daemon=True)
        self._thread.start()

    def _run(self, items: Iterator[T]) -> None:
        end = _End(None)
        try:
            while not self._stop.is_set():
                started = time.perf_counter()
                try:
                    item = next(items)
                except StopIteration:
                    break
                finally:
                    self.busy_s += time.perf_counter() - started
                if not self._put(item):
                    break
        except BaseException as exc:  # handed to the reader, raised there
            end = _End(exc)
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()
        self._put(end)

    def _put(self, item: T | _End) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self) -> Iterator[T]:
        return self

    def __next__(self) -> T:
        if self._done:
            raise StopIteration
        started = time.perf_counter()
        item = self._queue.get()
        self.wait_s += time.perf_counter() - started
        if isinstance(item, _End):
            self._done = True
            self._thread.join()
            if item.error is not None:
                raise item.error
            raise StopIteration
        return item

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._done = True
