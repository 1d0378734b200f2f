"""Free local ports for brokers, emulators and services started side by side (tests, bench)."""

from __future__ import annotations

import random
import socket


def free_port_block(size: int = 10) -> int:
    """A base port whose next `size` ports are free right now.

    Drawn below Linux's ephemeral range (32768+), where outgoing connections take their local
    ports, so a port found free is not grabbed by some client a moment later. Random, so several
    test sessions and benchmarks can run at once.
    """
    rng = random.SystemRandom()
    while True:
        base = rng.randrange(20_000, 32_000 - size, 10)
        if all(_free(base + i) for i in range(size)):
            return base


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def accepts(host: str, port: int, timeout: float = 0.5) -> bool:
    """Whether something listens on host:port (a TCP connect succeeds)."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False
