"""Dynamic batching: requests that arrive close together go through the model as one batch, from a bounded queue.

The event loop never runs the model: a single worker thread does, one batch at a time (models are not
thread-safe, and one batch already uses every core). After the first waiting request the worker collects more
for at most ``timeout_s`` or until ``max_batch`` are there. A full queue refuses at once (``QueueFull``), so
overload turns into fast 503s instead of growing memory and latency.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

In = TypeVar("In")
Out = TypeVar("Out")


class QueueFull(Exception):
    """The queue holds its maximum number of waiting requests."""


@dataclass
class BatchInfo:
    """How one request was served: the size of its batch and the seconds spent waiting and running."""

    batch_size: int
    queue_s: float
    run_s: float


@dataclass
class _Job(Generic[In, Out]):
    item: In
    future: asyncio.Future[tuple[Out, BatchInfo]]
    queued_at: float = field(default_factory=time.perf_counter)


class DynamicBatcher(Generic[In, Out]):
    """Collect submitted items into batches for ``run_batch`` (a list in, a list of the same length out).

    ``on_batch(size, seconds)`` is called after each batch (metrics). ``start``/``stop`` must be awaited inside
    the event loop that will call ``submit``.
    """

    def __init__(
        self,
        run_batch: Callable[[list[In]], list[Out]],
        max_batch: int,
        timeout_s: float,
        queue_size: int,
        on_batch: Callable[[int, float], None] | None = None,
    ) -> None:
        self.run_batch = run_batch
        self.max_batch = max_batch
        self.timeout_s = timeout_s
        self.queue_size = queue_size
        self.on_batch = on_batch
        self._queue: asyncio.Queue[_Job[In, Out]] | None = None
        self._task: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None
        self.in_flight = 0

    @property
    def running(self) -> bool:
        """Whether the worker is up (``/readyz``)."""
        return self._task is not None and not self._task.done()

    @property
    def depth(self) -> int:
        """Requests waiting for the model (not counting the batch being run)."""
        return self._queue.qsize() if self._queue is not None else 0

    async def start(self) -> None:
        """Create the queue and start the worker."""
        self._queue = asyncio.Queue(maxsize=self.queue_size)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="instseg-model")
        self._task = asyncio.create_task(self._worker())

    async def stop(self) -> None:
        """Stop the worker; requests still waiting are refused."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        while self._queue is not None and not self._queue.empty():
            job = self._queue.get_nowait()
            if not job.future.done():
                job.future.set_exception(QueueFull("the server is shutting down"))
        if self._executor is not None:
            self._executor.shutdown(wait=True)
        self._task = None

    async def submit(self, item: In) -> tuple[Out, BatchInfo]:
        """Queue ``item`` and wait for its result; raises ``QueueFull`` at once when the queue is full."""
        if self._queue is None or not self.running:
            raise QueueFull("the model worker is not running")
        job: _Job[In, Out] = _Job(item, asyncio.get_running_loop().create_future())
        try:
            self._queue.put_nowait(job)
        except asyncio.QueueFull as err:
            raise QueueFull(f"{self.queue_size} requests are already waiting") from err
        return await job.future

    async def _collect(self) -> list[_Job[In, Out]]:
        """The next batch: the first waiting job, then more until ``max_batch`` or ``timeout_s`` after it."""
        assert self._queue is not None
        jobs = [await self._queue.get()]
        deadline = time.perf_counter() + self.timeout_s
        while len(jobs) < self.max_batch:
            if not self._queue.empty():
                jobs.append(self._queue.get_nowait())
                continue
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                break
            try:
                jobs.append(await asyncio.wait_for(self._queue.get(), remaining))
            except asyncio.TimeoutError:
                break
        return [job for job in jobs if not job.future.done()]  # a client that went away was cancelled

    async def _worker(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            jobs = await self._collect()
            if not jobs:
                continue
            start = time.perf_counter()
            self.in_flight = len(jobs)
            try:
                outputs: Any = await loop.run_in_executor(self._executor, self.run_batch, [j.item for j in jobs])
                if len(outputs) != len(jobs):
                    raise RuntimeError(f"run_batch gave {len(outputs)} results for {len(jobs)} items")
            except Exception as err:  # the batch failed: every request in it gets the error (the worker lives on)
                for job in jobs:
                    if not job.future.done():
                        job.future.set_exception(err)
                continue
            finally:
                self.in_flight = 0
            run_s = time.perf_counter() - start
            if self.on_batch is not None:
                self.on_batch(len(jobs), run_s)
            for job, out in zip(jobs, outputs, strict=True):
                if not job.future.done():
                    job.future.set_result((out, BatchInfo(len(jobs), start - job.queued_at, run_s)))
