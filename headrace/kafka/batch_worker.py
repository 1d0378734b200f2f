"""A batch's handler on a worker thread, while the loop's thread keeps the consumer.

The loop hands each batch to one worker thread so that it can keep polling while a slow batch is
handled (see `consumer_loop`). librdkafka lets any thread call a consumer, but a call that needs
the group (a commit, a seek) blocks while another thread is inside a rebalance callback, and the
loop's callbacks wait for the batch in hand: a handler committing from the worker during
on_lost deadlocked both (seen in the fault suite). So the handler gets a stand-in consumer whose
every call is carried out by the loop's thread, between polls or inside the callback that waits,
exactly where handlers made those calls when they ran on the loop's thread.
"""

from __future__ import annotations

import queue
import sys
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any, cast

from confluent_kafka import Consumer, Message

from headrace.contract.poison import InfrastructureFailure

Handle = Callable[[Consumer, list[Message]], None]


class LoopStopped(InfrastructureFailure):
    """The consumer loop ended while its batch in hand still needed the consumer."""


class _Call:
    def __init__(self, method: Callable[..., Any], args: tuple[Any, ...], kwargs: Any) -> None:
        self.method, self.args, self.kwargs = method, args, kwargs
        self.result: Future[Any] = Future()

    def run(self) -> None:
        try:
            self.result.set_result(self.method(*self.args, **self.kwargs))
        except BaseException as exc:  # handed to the handler, which called it
            self.result.set_exception(exc)


class _ConsumerOnLoopThread:
    """Stands in for the consumer inside a handler: each method runs on the loop's thread."""

    def __init__(self, consumer: Consumer, worker: BatchWorker) -> None:
        self._consumer, self._worker = consumer, worker

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self._consumer, name)

        def on_loop_thread(*args: Any, **kwargs: Any) -> Any:
            return self._worker.call(method, args, kwargs)

        return on_loop_thread


class BatchWorker:
    """One batch at a time on a worker thread; the loop's thread drives it with `step`."""

    def __init__(self, consumer: Consumer) -> None:
        self.consumer = cast(Consumer, _ConsumerOnLoopThread(consumer, self))
        self.started_at = 0.0
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="batch")
        # The handler's consumer calls, and None when a batch ends (it wakes the loop's thread).
        self._calls: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._loop_thread = 0
        self._handler_thread = 0
        self._in_hand: Future[None] | None = None
        self._stopped = False

    @property
    def busy(self) -> bool:
        return self._in_hand is not None

    def in_hand_for(self) -> float:
        return time.monotonic() - self.started_at if self.busy else 0.0

    def start(self, handle: Handle, batch: list[Message]) -> None:
        assert self._in_hand is None, "one batch at a time"
        self._loop_thread = threading.get_ident()
        while not self._calls.empty():  # the end marker of a batch already collected
            self._calls.get_nowait()
        self.started_at = time.monotonic()
        self._in_hand = self._pool.submit(self._run, handle, batch)

    def step(self, timeout: float) -> bool:
        """Carry out the handler's consumer calls for a moment; True once its batch is done.

        The handler's exception, if it raised one, is raised here.
        """
        in_hand = self._in_hand
        if in_hand is None:
            return True
        try:
            call = self._calls.get(timeout=timeout)
        except queue.Empty:
            call = None
        if call is not None:
            call.run()
        elif not in_hand.done():
            wait([in_hand], timeout=timeout)  # the end marker comes just before the end
        if not in_hand.done():
            return False
        self._in_hand = None
        in_hand.result()
        return True

    def where(self) -> str:
        """The handler's stack, innermost call last (for the log of a slow batch)."""
        frame = sys._current_frames().get(self._handler_thread)
        return "".join(traceback.format_stack(frame, limit=8)) if frame else "(not started)"

    def call(self, method: Callable[..., Any], args: tuple[Any, ...], kwargs: Any) -> Any:
        if threading.get_ident() == self._loop_thread:
            return method(*args, **kwargs)
        call = _Call(method, args, kwargs)
        with self._lock:
            if self._stopped:
                raise LoopStopped("the consumer loop has stopped; the batch is not committed")
            self._calls.put(call)
        return call.result.result()

    def stop(self) -> None:
        """End the worker: a batch still waiting on the consumer gets LoopStopped, then ends."""
        with self._lock:
            self._stopped = True
            while not self._calls.empty():
                call = self._calls.get_nowait()
                if call is not None:
                    call.result.set_exception(LoopStopped("the consumer loop has stopped"))
        self._pool.shutdown(wait=True)

    def _run(self, handle: Handle, batch: list[Message]) -> None:
        self._handler_thread = threading.get_ident()
        try:
            handle(self.consumer, batch)
        finally:
            self._calls.put(None)
