"""What a comparison program reports: how many events it processed between two clock readings.

The programs write it once they have processed the bounded sample; the parent then stops them.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass
class Progress:
    target: int
    count: int = 0
    first_at: float = 0.0  # after the first event: start-up is not counted, as for the service
    last_at: float = 0.0
    cpu_first: float = 0.0  # the program's CPU time (all threads) at the same two moments
    cpu_last: float = 0.0

    def tick(self, result: Path) -> bool:
        """Count one event; True (and the result written) when the sample is done."""
        self.count += 1
        now = time.monotonic()
        if self.count == 1:
            self.first_at, self.cpu_first = now, time.process_time()
        if self.count == self.target:
            self.last_at, self.cpu_last = now, time.process_time()
            tmp = result.with_suffix(".tmp")
            tmp.write_text(json.dumps(asdict(self)))
            tmp.replace(result)
            return True
        return False

    @property
    def rate(self) -> float:
        return (self.count - 1) / (self.last_at - self.first_at)

    @property
    def cpu_rate(self) -> float:
        return (self.count - 1) / (self.cpu_last - self.cpu_first)


def read(result: Path) -> Progress:
    return Progress(**json.loads(result.read_text()))
