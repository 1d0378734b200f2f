"""Peak resident memory of processes, from /proc/<pid>/status, sampled on a thread.

VmHWM is the kernel's own high-water mark of a process's resident set, so sampling it misses
nothing while the process lives; sampling twice a second keeps the peak of a process that exits
or restarts before the end (its new VmHWM would start from zero).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from bench.service_process import memory_kib


@dataclass
class MemorySampler:
    """Largest VmHWM seen per process name, sampled on a thread until stopped."""

    pids: dict[str, int]
    peak_kib: dict[str, int] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> threading.Thread:
        t = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        t.start()
        return t

    def sample(self) -> None:
        for name, pid in list(self.pids.items()):
            hwm = memory_kib(pid).get("VmHWM", 0)
            self.peak_kib[name] = max(self.peak_kib.get(name, 0), hwm)

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            self.sample()

    def stop(self) -> None:
        self._stop.set()
        self.sample()
