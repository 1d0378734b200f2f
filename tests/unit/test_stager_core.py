"""Staging files: names, date folders, and no byte lost for non-UTF-8 values."""

from __future__ import annotations

import base64

import orjson

from services.stager.core import Record, StagedName, parse_name, raw_line, stage

DAY_MS = 1_764_000_000_000  # 2025-11-24T16:00:00Z


def rec(partition: int, offset: int, value: bytes | None) -> Record:
    return Record("p.raw", partition, offset, DAY_MS, b"k", value, [("h", b"v")])


def test_one_file_per_partition_named_by_offsets_and_writer() -> None:
    records = [rec(0, 5, b"{}"), rec(1, 9, b"[]"), rec(0, 6, b"x")]
    files = list(stage("raw", records, raw_line, "pod/a.1"))
    assert sorted(f.path for f in files) == [
        "raw/date=2025-11-24/p.raw.p000.o00000000000000000005-00000000000000000006.pod_a_1.jsonl",
        "raw/date=2025-11-24/p.raw.p001.o00000000000000000009-00000000000000000009.pod_a_1.jsonl",
    ]
    assert parse_name(files[0].path) == StagedName("p.raw", 0, 5, 6, "pod_a_1")
    assert parse_name("raw/date=2025-11-24/notes.txt") is None
    first = next(f for f in files if ".p000." in f.path)
    lines = [orjson.loads(line) for line in first.data.splitlines()]
    assert [line["offset"] for line in lines] == [5, 6] and first.records == 2
    assert lines[0]["headers"] == {"h": "v"} and lines[0]["key"] == "k"


def test_non_utf8_values_are_kept_as_base64() -> None:
    [f] = stage("raw", [rec(0, 1, b"\xff\x00ok"), rec(0, 2, None)], raw_line, "w")
    a, b = (orjson.loads(line) for line in f.data.splitlines())
    assert base64.b64decode(a["value_base64"]) == b"\xff\x00ok"
    assert b["value"] is None
