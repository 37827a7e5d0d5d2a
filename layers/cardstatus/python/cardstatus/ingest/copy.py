"""COPY plumbing: a file-like view of byte chunks for psycopg2, and the reader thread that
decodes and normalises the next chunk while the database applies the previous one."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

CHUNK_BLOCKS = 10  # COPY text blocks per chunk: staged and applied together


class ChunkStream:
    """File-like view of an iterator of byte chunks, for psycopg2's copy_expert."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buffer = b""
        # psycopg2 turns an exception raised in read() into QueryCanceled; keep the original
        # (FileRejected from the decoder, an S3 read error) so ingest() can re-raise it.
        self.error: BaseException | None = None

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buffer) < size:
            try:
                chunk = next(self._chunks, None)
            except BaseException as exc:
                self.error = exc
                raise
            if chunk is None:
                break
            self._buffer += chunk
        if size < 0:
            out, self._buffer = self._buffer, b""
        else:
            out, self._buffer = self._buffer[:size], self._buffer[size:]
        return out

    readline = read


class ChunkReader(threading.Thread):
    """Decodes and normalises the file in a thread, handing over chunks of COPY text.

    The queue holds at most two chunks, so memory stays bounded; while the calling thread
    waits on the database (psycopg2 releases the GIL), this one parses the next chunk.
    An exception here (FileRejected, an S3 read error) is re-raised by chunks().
    """

    _END = object()

    def __init__(self, rows: Iterator[bytes], finish: Callable[[], None]) -> None:
        super().__init__(name="cardstatus-reader", daemon=True)
        self._rows = rows
        self._finish = finish
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=2)
        self._stopped = threading.Event()

    def run(self) -> None:
        try:
            chunk: list[bytes] = []
            for block in self._rows:
                if self._stopped.is_set():
                    return
                chunk.append(block)
                if len(chunk) >= CHUNK_BLOCKS:
                    self._put(chunk)
                    chunk = []
            if chunk:
                self._put(chunk)
            self._finish()
            self._put(self._END)
        except BaseException as exc:
            self._put(exc)

    def _put(self, item: Any) -> None:
        while not self._stopped.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def chunks(self) -> Iterator[list[bytes]]:
        while True:
            item = self._queue.get()
            if item is self._END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def stop(self) -> None:
        """Make the thread finish (it checks between blocks) and wait for it."""
        self._stopped.set()
        self.join()


def copy_chunk(cur: Any, statement: str, chunk: list[bytes]) -> None:
    """COPY one chunk of COPY-text blocks."""
    cur.copy_expert(statement, ChunkStream(iter(chunk)), size=1 << 16)
