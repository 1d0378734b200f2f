"""Idempotency keys of ingest requests: a retried request is answered, not published again.

Kept in the producer process's memory (see docs/ingest.md for what that does and does not cover):
a key is remembered from the moment its request is accepted until `window` seconds later, or
until `max_keys` newer keys push it out. Only accepted requests (202) are remembered; a request
that failed (400, 413, 503) leaves nothing behind, so its retry is processed afresh. All calls
come from the aiohttp event loop's one thread, so no lock is needed.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum


class Seen(Enum):
    NEW = "new"  # go ahead; call finish() or abandon() when done
    DONE = "done"  # answered before: send the stored answer
    IN_FLIGHT = "in_flight"  # the first request with this key is still being published
    KEY_REUSED = "key_reused"  # the key came before with a different body


@dataclass(frozen=True, slots=True)
class _Done:
    # Small on purpose: a full store holds max_keys of these (~300 bytes each with the key).
    fingerprint: bytes
    accepted: int
    expires: float


class IdempotencyKeys:
    def __init__(
        self, window: float, max_keys: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.window, self.max_keys, self._clock = window, max_keys, clock
        self._done: OrderedDict[str, _Done] = OrderedDict()  # oldest first
        self._in_flight: dict[str, bytes] = {}

    def __len__(self) -> int:
        return len(self._done)

    def begin(self, key: str, fingerprint: bytes) -> tuple[Seen, int]:
        """What to do with a request; with DONE, the number of events it was accepted with."""
        self._expire()
        done = self._done.get(key)
        if done is not None:
            if done.fingerprint != fingerprint:
                return Seen.KEY_REUSED, 0
            return Seen.DONE, done.accepted
        if key in self._in_flight:
            same = self._in_flight[key] == fingerprint
            return (Seen.IN_FLIGHT if same else Seen.KEY_REUSED), 0
        self._in_flight[key] = fingerprint
        return Seen.NEW, 0

    def finish(self, key: str, accepted: int) -> None:
        fingerprint = self._in_flight.pop(key)
        self._done[key] = _Done(fingerprint, accepted, self._clock() + self.window)
        while len(self._done) > self.max_keys:
            self._done.popitem(last=False)

    def abandon(self, key: str) -> None:
        self._in_flight.pop(key, None)

    def _expire(self) -> None:
        now = self._clock()
        # Entries are added in expiry order (same window), so the expired ones are at the front.
        while self._done and next(iter(self._done.values())).expires <= now:
            self._done.popitem(last=False)
