"""Group commit: every write goes through one writer thread, which takes whatever has queued
up while it was saving and saves it as one batch (one transaction, one fsync)."""

import logging
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)
_STOP = object()


@dataclass
class WriterStats:
    batches: int = 0
    commands: int = 0
    largest: int = 0


class GroupCommit:
    def __init__(self, process: Callable[[list[Any]], list[Any]], max_batch: int = 1000,
                 name: str = "ledger-writer"):
        self.process = process
        self.max_batch = max_batch
        self.stats = WriterStats()
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._started = threading.Lock()
        self._closed = False

    def submit(self, commands: Sequence[Any]) -> Future:
        """Queue commands; the future holds their outcomes, in order."""
        if self._closed:
            raise RuntimeError("the ledger writer is closed")
        with self._started:
            if not self._thread.is_alive() and self._thread.ident is None:
                self._thread.start()
        future: Future = Future()
        self._queue.put((list(commands), future))
        return future

    def __call__(self, commands: Sequence[Any]) -> list[Any]:
        return self.submit(commands).result()

    def _run(self) -> None:
        stopping = False
        while not stopping:
            job = self._queue.get()
            if job is _STOP:
                return
            jobs, count = [job], len(job[0])
            while count < self.max_batch:
                try:
                    job = self._queue.get_nowait()
                except queue.Empty:
                    break
                if job is _STOP:
                    stopping = True
                    break
                jobs.append(job)
                count += len(job[0])
            self._commit(jobs, count)

    def _commit(self, jobs: list[tuple[list[Any], Future]], count: int) -> None:
        commands = [command for batch, _ in jobs for command in batch]
        try:
            outcomes = self.process(commands)
        except BaseException as error:  # noqa: BLE001 - every waiting client learns of it
            log.exception("ledger batch of %d failed", count)
            for _, future in jobs:
                future.set_exception(error)
            return
        self.stats.batches += 1
        self.stats.commands += count
        self.stats.largest = max(self.stats.largest, count)
        start = 0
        for batch, future in jobs:
            future.set_result(outcomes[start:start + len(batch)])
            start += len(batch)

    def close(self) -> None:
        self._closed = True
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join()
