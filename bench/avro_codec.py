"""Column-wise Avro (headrace/codec/avro_columns.py) against fastavro record by record, same events.

    python -m bench.avro_codec [--events N]

Prints events/s of both and their ratio, for the validator's encode and the loader's decode.
Both sides get identical input; outputs are checked equal before anything is timed.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, cast

import fastavro
import pyarrow as pa

from headrace.codec import avro_columns, wire_format
from headrace.dev.sample_events import good_event
from headrace.runtime.paths import SCHEMAS_DIR

SCHEMA_ID = 4


def events(n: int) -> pa.Table:
    rng = random.Random(1)
    now = datetime.now(UTC)
    accounts = [rng.randrange(10**11, 10**12) for _ in range(1000)]
    rows = []
    for i in range(n):
        e = good_event(rng, i + 1, now, accounts)
        e["event_time"] = datetime.fromisoformat(e["event_time"])
        e["channel"] = rng.choice([None, "ATM", "ONLINE"])
        rows.append(e)
    avro = json.loads((SCHEMAS_DIR / "transaction.v2.avsc").read_text())
    return pa.Table.from_pylist(rows, schema=avro_columns.arrow_schema(avro))


def best_of(runs: int, work: Callable[[], Any]) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=100_000)
    n = parser.parse_args().events
    avro = json.loads((SCHEMAS_DIR / "transaction.v2.avsc").read_text())
    parsed = fastavro.parse_schema(avro)
    table = events(n)
    records = table.to_pylist()

    def fastavro_encode() -> list[bytes]:
        return [wire_format.encode(SCHEMA_ID, parsed, r) for r in records]

    def columns_encode() -> list[bytes]:
        return avro_columns.frames(table, avro, SCHEMA_ID)

    frames = columns_encode()
    assert frames == fastavro_encode()

    def fastavro_decode() -> list[dict[str, Any]]:
        # fastavro types a datum as any Avro value; the transaction schema's is a record.
        return [
            cast(dict[str, Any], fastavro.schemaless_reader(io.BytesIO(f[5:]), parsed, None))
            for f in frames
        ]

    def columns_decode() -> pa.Table:
        return avro_columns.decode(frames, lambda _: avro, table.schema)

    assert columns_decode().equals(table)
    print(f"{n:,} transaction events, best of 3, one core")
    for name, baseline, ours in (
        ("encode (validator)", fastavro_encode, columns_encode),
        ("decode (loader)", fastavro_decode, columns_decode),
    ):
        base, col = best_of(3, baseline), best_of(3, ours)
        print(
            f"{name:20} fastavro {n / base:>12,.0f} ev/s   column-wise {n / col:>12,.0f} ev/s"
            f"   ratio {base / col:5.1f}x"
        )


if __name__ == "__main__":
    main()
