"""The events every figure is measured on: sample JSONL files, generated once and cached.

headrace/dev/sample_events.py writes ~50k events/s per core, so 10M events take minutes; files are
generated in 1M-event chunks on every core and kept under .headrace/bench/data between runs.
Each file's expected reason counts are kept beside it.
"""

from __future__ import annotations

import json
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from headrace.dev.sample_events import generate

CHUNK = 1_000_000
SEED = 7


def _chunk(path: Path, events: int, seed: int, first_id: int) -> Counter[str]:
    return generate(path, events, seed=seed, first_id=first_id)


def sample_file(data: Path, events: int) -> tuple[Path, Counter[str]]:
    """A JSONL file of `events` events (2% bad, unique ids from 1) and its reason counts."""
    path = data / f"events-{events}-s{SEED}.jsonl"
    counts_file = path.with_suffix(".counts.json")
    if path.exists() and counts_file.exists():
        return path, Counter(json.loads(counts_file.read_text()))
    sizes = [min(CHUNK, events - start) for start in range(0, events, CHUNK)]
    parts = [path.with_suffix(f".part{i}") for i in range(len(sizes))]
    with ProcessPoolExecutor() as pool:
        futures = [
            pool.submit(_chunk, part, n, SEED + i, 1 + i * CHUNK)
            for i, (part, n) in enumerate(zip(parts, sizes, strict=True))
        ]
        total: Counter[str] = Counter()
        for f in futures:
            total.update(f.result())
    with path.with_suffix(".partial").open("wb") as out:
        for part in parts:
            with part.open("rb") as src:
                while block := src.read(1 << 24):
                    out.write(block)
            part.unlink()
    path.with_suffix(".partial").replace(path)
    counts_file.write_text(json.dumps(total))
    return path, total
