"""Two threads for one copy, so that the network and the store work at the same time.

``WriteBehind`` (backup): the exec's reading thread hands each stdout frame to
``write``; frames are gathered into blocks of ``BLOCK`` bytes and a second thread hashes
them and writes them to the store's writer (an upload part, a file). Reading goes on
while a part uploads; ``DEPTH`` blocks at most wait, so memory stays bounded. hashlib
and the store's I/O release the GIL, so the two threads truly overlap.

``read_ahead`` (restore): a thread reads the stored copy ``DEPTH`` blocks ahead of the
exec's sending thread, which masks and sends.

A failure on the second thread comes back on the first: at its next ``write`` (so that a
store that fails mid-copy stops the exec), or from ``close`` / the next block.
"""

from __future__ import annotations

import hashlib
import queue
import threading
from collections.abc import Callable, Iterator

from backups.engine.volumes.objects import BLOCK  # the blocks the mover writes too

DEPTH = 8
_END = object()
_WAIT = 0.5  # seconds between looks at the other side while a queue stays full


class WriteBehind:
    def __init__(self, writer, *, name: str = "copy-writer"):
        self.digest = hashlib.sha256()
        self.size = 0
        self._writer = writer
        self._buffer = bytearray()
        self._queue: queue.Queue = queue.Queue(DEPTH)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._drain, name=name, daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        while True:
            block = self._queue.get()
            if block is _END:
                return
            if self._error is not None:
                continue  # failed already: only empty the queue
            try:
                self.digest.update(block)
                self._writer.write(block)
            except BaseException as exc:  # noqa: BLE001 (handed to the other thread)
                self._error = exc

    def _put(self, item) -> None:
        while True:
            self._raise()
            try:
                self._queue.put(item, timeout=_WAIT)
                return
            except queue.Full:
                continue

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def write(self, data) -> None:
        self._raise()
        self.size += len(data)
        self._buffer += data
        if len(self._buffer) >= BLOCK:
            block, self._buffer = bytes(self._buffer), bytearray()
            self._put(block)

    def close(self) -> None:
        """Write what is left and wait for the thread; raise its failure, if any."""
        try:
            if self._buffer:
                block, self._buffer = bytes(self._buffer), bytearray()
                self._put(block)
        finally:
            self._finish()
        self._raise()

    def _finish(self) -> None:
        while self._thread.is_alive():
            try:
                self._queue.put(_END, timeout=_WAIT)
                break
            except queue.Full:
                continue
        self._thread.join()

    def abandon(self) -> None:
        """Stop the thread without writing what is left (the copy failed anyway)."""
        self._error = self._error or RuntimeError("abandoned")
        self._buffer = bytearray()
        self._finish()


def read_ahead(read: Callable[[int], bytes], *, name: str = "copy-reader") -> Iterator[bytes]:
    """The blocks ``read(BLOCK)`` returns until it returns nothing, read on a thread
    ``DEPTH`` blocks ahead. A read that fails raises where its block would have come.
    Closing the iterator early stops the thread."""
    blocks: queue.Queue = queue.Queue(DEPTH)
    stop = threading.Event()

    def fill() -> None:
        try:
            while not stop.is_set():
                data = read(BLOCK)
                _offer(blocks, data or _END, stop)
                if not data:
                    return
        except BaseException as exc:  # noqa: BLE001 (raised on the consuming thread)
            _offer(blocks, exc, stop)

    thread = threading.Thread(target=fill, name=name, daemon=True)
    thread.start()
    try:
        while True:
            item = blocks.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()


def _offer(blocks: queue.Queue, item, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            blocks.put(item, timeout=_WAIT)
            return
        except queue.Full:
            continue
