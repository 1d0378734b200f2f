"""Staging files: names, date folders, and no byte lost for non-UTF-8 values."""

from __future__ import annotations

import base64

import orjson

from headrace.lake.zone_files import ZoneFileName, parse_name
from services.stager.core import Record, raw_line, stage

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
    assert parse_name(files[0].path) == ZoneFileName("p.raw", 0, 5, 6, "pod_a_1")
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


def test_a_record_whose_line_fails_is_kept_in_its_zone_as_unprocessable() -> None:
    def line(r: Record) -> dict[str, object]:
        if r.offset == 13:
            raise KeyError("envelope field missing")
        return raw_line(r)

    records = [rec(0, o, b'{"n": %d}' % o) for o in range(10, 20)]
    [f] = stage("error", records, line, "w")
    lines = [orjson.loads(x) for x in f.data.splitlines()]
    assert [x["offset"] for x in lines] == list(range(10, 20)) and f.isolated == 1
    kept = lines[3]
    assert kept["reason"] == "UNPROCESSABLE" and kept["stage"] == "stager"
    assert kept["value"] == '{"n": 13}' and kept["partition"] == 0
    assert "KeyError" in kept["problems"][0]["message"]


def test_dates_beyond_the_calendar_go_to_the_nearest_day_folder() -> None:
    far = Record("p.raw", 0, 1, 2**62, None, b"x", [])
    before = Record("p.raw", 0, 2, -(2**62), None, b"x", [])
    [a] = stage("raw", [far], raw_line, "w")
    [b] = stage("raw", [before], raw_line, "w")
    assert a.path.startswith("raw/date=9999-12-31/") and b.path.startswith("raw/date=0001-01-01/")
