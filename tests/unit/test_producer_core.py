"""Reading upstream files: every format yields the same events, with keys and row numbers."""

from __future__ import annotations

import io
from pathlib import Path

import fastavro
import orjson
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from headrace.runtime.errors import OperatorError
from services.producer.core import open_file, read_batches
from services.producer.http_body import BadBody, EventTooLarge, split_body
from services.producer.idempotency import IdempotencyKeys, Seen

ROWS = [
    {
        "transaction_id": 1,
        "amount": 1.5,
        "status": "PENDING",
        "account_number": "000000000001",
        "event_time": "2026-11-20T10:00:00Z",
    },
    {
        "transaction_id": 2,
        "amount": 2.0,
        "status": "FAILED",
        "account_number": "000000000002",
        "event_time": "2026-11-21T10:00:00Z",
    },
]


def events(path: Path) -> list[tuple[dict[str, object], bytes | None, int]]:
    return [(orjson.loads(e.value), e.key, e.row) for b in read_batches(path) for e in b]


def test_jsonl_lines_are_sent_as_received(tmp_path: Path) -> None:
    f = tmp_path / "a.jsonl"
    f.write_bytes(orjson.dumps(ROWS[0]) + b"\n\n{broken\n" + orjson.dumps(ROWS[1]) + b"\n")
    got = [e for b in read_batches(f) for e in b]
    assert [e.row for e in got] == [1, 3, 4]
    assert got[1].value == b"{broken" and got[1].key is None
    assert got[0].key == b"1" and orjson.loads(got[2].value) == ROWS[1]


def test_csv_parquet_avro_give_the_same_events(tmp_path: Path) -> None:
    table = pa.Table.from_pylist(ROWS)
    pacsv.write_csv(table, tmp_path / "a.csv")
    pq.write_table(table, tmp_path / "a.parquet")
    schema = {
        "type": "record",
        "name": "T",
        "fields": [
            {"name": "transaction_id", "type": "long"},
            {"name": "amount", "type": "double"},
            {"name": "status", "type": "string"},
            {"name": "account_number", "type": "string"},
            {"name": "event_time", "type": "string"},
        ],
    }
    with (tmp_path / "a.avro").open("wb") as out:
        fastavro.writer(out, schema, ROWS)
    expected = [(r, str(r["transaction_id"]).encode()) for r in ROWS]
    for name, first_row in (("a.csv", 2), ("a.parquet", 1), ("a.avro", 1)):
        got = events(tmp_path / name)
        assert [(v, k) for v, k, _ in got] == expected, name
        assert [row for *_, row in got] == [first_row, first_row + 1], name


def test_operator_mistakes_get_one_line_messages(tmp_path: Path) -> None:
    with pytest.raises(OperatorError, match="no such file"):
        list(read_batches(tmp_path / "missing.jsonl"))
    (tmp_path / "a.txt").write_text("x")
    with pytest.raises(OperatorError, match="unknown file type"):
        list(read_batches(tmp_path / "a.txt"))
    (tmp_path / "bad.parquet").write_text("not parquet")
    with pytest.raises(OperatorError, match="not a readable Parquet"):
        list(read_batches(tmp_path / "bad.parquet"))


def _read_one_csv(tmp_path: Path, data: bytes) -> list[dict[str, object]]:
    f = tmp_path / "v.csv"
    f.write_bytes(data)
    return [orjson.loads(e.value) for b in read_batches(f) for e in b]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        pytest.param(
            b"Transaction_ID,AMOUNT\n7,1.50\n",
            [{"transaction_id": 7, "amount": 1.50}],
            id="case",
        ),
        pytest.param(
            b"  transaction id \t, Amount \n7,2\n",
            [{"transaction_id": 7, "amount": 2}],
            id="whitespace-around-and-inside-names",
        ),
        pytest.param(
            b"\xef\xbb\xbftransaction_id,status\r\n7,PENDING\r\n8,FAILED\r\n",
            [{"transaction_id": 7, "status": "PENDING"}, {"transaction_id": 8, "status": "FAILED"}],
            id="bom-and-crlf",
        ),
        pytest.param(
            b'transaction_id,note\n7,"a, b"\n8,"two\nlines"\n9,"say ""hi"""\n',
            [
                {"transaction_id": 7, "note": "a, b"},
                {"transaction_id": 8, "note": "two\nlines"},
                {"transaction_id": 9, "note": 'say "hi"'},
            ],
            id="quoted-comma-newline-escaped-quote",
        ),
        pytest.param(
            b"transaction_id,amount,customer_region,account_number\n7,,NA,000000000001\n",
            [
                {
                    "transaction_id": 7,
                    "amount": None,
                    "customer_region": "NA",
                    "account_number": "000000000001",
                }
            ],
            id="empty-is-null-NA-is-text-leading-zeros-kept",
        ),
        pytest.param(
            b"transaction_id,amount\nabc,12;5\n7, 3\n",
            [{"transaction_id": "abc", "amount": "12;5"}, {"transaction_id": 7, "amount": " 3"}],
            id="non-numbers-in-number-fields-stay-text-for-the-validator",
        ),
        pytest.param(
            b'transaction_id,note\n7,"tab\there\\ \x01"\n',
            [{"transaction_id": 7, "note": "tab\there\\ \x01"}],
            id="json-escapes",
        ),
        pytest.param(
            b"transaction_id,amount\n\n7,1\n\n",
            [{"transaction_id": 7, "amount": 1}],
            id="blank-lines-skipped",
        ),
        pytest.param(b"transaction_id,amount\n", [], id="header-only"),
    ],
)
def test_csv_variants(tmp_path: Path, data: bytes, expected: list[dict[str, object]]) -> None:
    assert _read_one_csv(tmp_path, data) == expected


def test_csv_keeps_number_text_and_keys_by_transaction_id(tmp_path: Path) -> None:
    f = tmp_path / "k.csv"
    f.write_bytes(b"amount,transaction_id\n1.50,42\n1e3,\n")
    got = [e for b in read_batches(f) for e in b]
    assert [e.value for e in got] == [
        b'{"amount":1.50,"transaction_id":42}',
        b'{"amount":1e3,"transaction_id":null}',
    ]
    assert [e.key for e in got] == [b"42", None]
    assert [e.row for e in got] == [2, 3]


def _avro_bytes(records: int) -> bytes:
    schema = {
        "type": "record",
        "name": "T",
        "fields": [{"name": "transaction_id", "type": "long"}, {"name": "note", "type": "string"}],
    }
    out = io.BytesIO()
    fastavro.writer(
        out,
        schema,
        ({"transaction_id": i, "note": "x" * 50} for i in range(records)),
        sync_interval=1000,
    )
    return out.getvalue()


def _parquet_bytes() -> bytes:
    out = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(ROWS * 100), out, row_group_size=50)
    return out.getvalue()


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("cols.csv", b'a,b\n1,2\n\n3,"x\ny"\n4,5,6\n', r"line 6: 3 fields where the header has 2"),
        ("short.csv", b"a,b\n1,2\n3\n", r"line 3: 1 fields where the header has 2"),
        ("latin1.csv", b"a,b\n1,2\n3,caf\xe9\n", r"line 3: not UTF-8 \(byte 0xe9 at column 6\)"),
        ("utf16.csv", "a,b\n1,2\n".encode("utf-16"), r"line 1: not UTF-8 \(byte 0xff"),
        ("open.csv", b'a,b\n1,2\n3,"abc\n4,5\n', r"line 3: a quoted field .* never closed"),
        ("dup.csv", b"Amount, amount\n1,2\n", r"line 1 \(the header\): columns 1 and 2 are both"),
        ("noname.csv", b"a,,b\n1,2,3\n", r"line 1 \(the header\): column 2 has no name"),
        ("empty.csv", b"", r"empty file"),
        ("cut.parquet", _parquet_bytes()[:-100], r"not a readable Parquet file, or truncated"),
        ("junk.parquet", b"PAR1" + b"\x00" * 64, r"not a readable Parquet file"),
        ("cut.avro", _avro_bytes(2_000)[:60_000], r"record \d+ is unreadable"),
        ("junk.avro", b"not avro at all", r"not an Avro object container file"),
        ("huge.jsonl", b"{}\n" + b"x" * 1_000_000 + b"\n", r"line 2: 1,000,000 bytes"),
    ],
)
def test_malformed_files_name_the_place_to_fix(
    tmp_path: Path, name: str, data: bytes, message: str
) -> None:
    f = tmp_path / name
    f.write_bytes(data)
    with pytest.raises(OperatorError, match=message) as caught:
        open_file(f)
    text = str(caught.value)
    assert text.startswith(str(f)) and "\n" not in text


def test_truncated_avro_names_the_first_unreadable_record(tmp_path: Path) -> None:
    f = tmp_path / "cut.avro"
    f.write_bytes(_avro_bytes(2_000)[:60_000])
    readable = 0
    with pytest.raises(Exception), f.open("rb") as raw:  # noqa: B017 - any decode error
        for _ in fastavro.reader(raw):
            readable += 1
    with pytest.raises(OperatorError, match=f"record {readable + 1} is unreadable"):
        open_file(f)


def test_a_malformed_file_yields_nothing(tmp_path: Path) -> None:
    f = tmp_path / "late.csv"
    f.write_bytes(b"a,b\n" + b"1,2\n" * 50_000 + b"3,4,5\n")
    with pytest.raises(OperatorError, match="line 50002"):
        next(read_batches(f))


def test_row_counts_for_the_progress_bar(tmp_path: Path) -> None:
    table = pa.Table.from_pylist(ROWS)
    pacsv.write_csv(table, tmp_path / "a.csv")
    pq.write_table(table, tmp_path / "a.parquet")
    (tmp_path / "a.jsonl").write_bytes(b"{}\n\n{}\n")
    (tmp_path / "a.avro").write_bytes(_avro_bytes(3))
    rows = {n: open_file(tmp_path / n).rows for n in ("a.csv", "a.parquet", "a.jsonl", "a.avro")}
    assert rows == {"a.csv": 2, "a.parquet": 2, "a.jsonl": 2, "a.avro": 3}


def test_jsonl_byte_order_mark_is_not_part_of_the_first_event(tmp_path: Path) -> None:
    f = tmp_path / "bom.jsonl"
    f.write_bytes(b'\xef\xbb\xbf{"transaction_id": 5}\r\n\xff\xfe\n')
    got = [e for b in read_batches(f) for e in b]
    assert [(e.value, e.key) for e in got] == [
        (b'{"transaction_id": 5}', b"5"),
        (b"\xff\xfe", None),
    ]


@pytest.mark.parametrize(
    ("body", "values", "rows"),
    [
        (
            b' {"transaction_id": 1, "amount": 1.50}\n',
            [b'{"transaction_id": 1, "amount": 1.50}'],
            [1],
        ),
        (
            b'[{"a": 1.50}, {"transaction_id": "x"}]',
            [b'{"a": 1.50}', b'{"transaction_id": "x"}'],
            [1, 2],
        ),
        (b'{"a":1}\r\n\n{"b":2}\n', [b'{"a":1}', b'{"b":2}'], [1, 3]),
        (b'{\n "a": 1\n}', [b'{\n "a": 1\n}'], [1]),
    ],
    ids=["object", "array-items-keep-their-bytes", "ndjson", "pretty-printed-object"],
)
def test_http_body_shapes(body: bytes, values: list[bytes], rows: list[int]) -> None:
    events = split_body(body)
    assert [e.value for e in events] == values
    assert [e.row for e in events] == rows


@pytest.mark.parametrize(
    ("body", "problems"),
    [
        (b"", ["body: empty"]),
        (
            b'{"a":1}\n{"a":\n{"b":2}\n[1]\n',
            ["line 2: not JSON", "line 4: not a JSON object"],
        ),
        (b'[{"a":1}, 2, "x"]', ["item 2: not a JSON object", "item 3: not a JSON object"]),
        (b'[{"a":1},', ["body: not a JSON array"]),
        (b"[]", ["body: an empty array"]),
        (b'{"a":1}\n{"b":"\xff"}\n', ["line 2: not UTF-8"]),
        (b"hello", ["line 1: not JSON"]),
    ],
    ids=["empty", "ndjson-lines", "array-items", "cut-array", "empty-array", "utf8", "text"],
)
def test_http_body_problems_reject_the_whole_request(body: bytes, problems: list[str]) -> None:
    with pytest.raises(BadBody) as caught:
        split_body(body)
    assert len(caught.value.problems) == len(problems)
    for got, wanted in zip(caught.value.problems, problems, strict=True):
        assert got.startswith(wanted), got


def test_http_event_larger_than_a_kafka_message() -> None:
    with pytest.raises(EventTooLarge, match="event 2"):
        split_body(b'{"a":1}\n{"a":"' + b"x" * 1_000_000 + b'"}\n')


def test_idempotency_keys_window_in_flight_and_reuse() -> None:
    now = [0.0]
    keys = IdempotencyKeys(window=10, max_keys=2, clock=lambda: now[0])
    assert keys.begin("k", b"body1") == (Seen.NEW, 0)
    assert keys.begin("k", b"body1") == (Seen.IN_FLIGHT, 0)
    assert keys.begin("k", b"body2") == (Seen.KEY_REUSED, 0)
    keys.finish("k", 3)
    assert keys.begin("k", b"body1") == (Seen.DONE, 3)
    assert keys.begin("k", b"body2") == (Seen.KEY_REUSED, 0)
    now[0] = 10.0
    assert keys.begin("k", b"body2") == (Seen.NEW, 0)  # the window has passed
    keys.abandon("k")
    assert keys.begin("k", b"body2") == (Seen.NEW, 0)  # a failed request leaves nothing
    keys.finish("k", 1)
    for other in ("a", "b"):
        keys.begin(other, b"x")
        keys.finish(other, 1)
    assert len(keys) == 2 and keys.begin("k", b"body2") == (Seen.NEW, 0)  # pushed out


DEEP = b"[" * 100_000 + b"]" * 100_000


def test_a_line_nested_100000_levels_deep_is_published_unkeyed(tmp_path: Path) -> None:
    f = tmp_path / "deep.jsonl"
    f.write_bytes(b'{"transaction_id": 1}\n' + b'{"x": ' + DEEP + b"}\n" + DEEP + b"\n")
    open_file(f)
    got = [(e.key, e.row) for b in read_batches(f) for e in b]
    assert got == [(b"1", 1), (None, 2), (None, 3)]


@pytest.mark.parametrize("body", [DEEP, b'{"x": ' + DEEP + b"}", b"[" + DEEP + b"]"])
def test_http_body_nested_too_deeply_is_a_bad_body(body: bytes) -> None:
    with pytest.raises(BadBody, match="nested too deeply"):
        split_body(body)


def test_csv_without_a_header_line_is_refused(tmp_path: Path) -> None:
    f = tmp_path / "no-header.csv"
    f.write_text(
        "1,10.5,0.2,COMPLETED,pos,123456789012,CHECKING,EU,2026-11-20T10:00:00Z\n"
        "2,11.5,0.3,COMPLETED,pos,123456789012,CHECKING,EU,2026-11-20T10:00:00Z\n"
    )
    with pytest.raises(OperatorError, match=r"names no field of the contract.*add a header line"):
        open_file(f)


def test_a_line_with_bad_utf8_in_its_key_is_published_unkeyed(tmp_path: Path) -> None:
    f = tmp_path / "bad-key.jsonl"
    f.write_bytes(b'{"transaction_id":"\x80"\n{"transaction_id": "\xff\xfe"}\n')
    assert [(e.key, e.row) for b in read_batches(f) for e in b] == [(None, 1), (None, 2)]


def test_parquet_nanoseconds_become_text_python_cannot_hold_them(tmp_path: Path) -> None:
    f = tmp_path / "ns.parquet"
    table = pa.table(
        {
            "event_time": pa.array([1_700_000_000_000_000_001], pa.timestamp("ns")),
            "took": pa.array([5], pa.duration("ns")),
        }
    )
    pq.write_table(table, f)
    [(event, _, _)] = events(f)
    assert event == {"event_time": "2023-11-14T22:13:20.000000001Z", "took": "5"}
