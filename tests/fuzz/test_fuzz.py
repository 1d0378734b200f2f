"""Whatever arrives, nothing escapes, and each input ends in exactly one place.

Generated inputs (tests/fuzz/strategies.py) go through the producer's file and HTTP parsing, the
validator's core and the loader's core: parsing answers every input with an event or the
documented refusal (an OperatorError line for a file, a 4xx for HTTP), and every message ends
either in the fact table (loaded or recorded as a duplicate) or rejected with a reason code
docs/contract.md documents.
"""

from __future__ import annotations

import io
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

import fastavro
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from confluent_kafka import Producer
from hypothesis import given
from hypothesis import strategies as st

from headrace.codec.registry import default_registry
from headrace.contract.rules import load_contract
from headrace.contract.validator import Validator
from headrace.kafka.topics import Topics
from headrace.lake import warehouse
from headrace.lake.bucket import Bucket
from headrace.runtime.errors import OperatorError
from headrace.runtime.settings import CommonSettings
from services.loader.runner import Frame, LoaderHandler
from services.producer.core import read_batches
from services.producer.events import MAX_EVENT_BYTES
from services.producer.http_body import BadBody, EventTooLarge, split_body
from tests.fuzz.conftest import count, examples
from tests.fuzz.strategies import (
    VALID,
    amplified,
    any_message,
    json_values,
    keys,
    texts,
    to_bytes,
)

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)
DOCS = Path(__file__).parents[2] / "docs" / "contract.md"
DOCUMENTED = set(re.findall(r"^\| ([A-Z_]+) \|", DOCS.read_text(), re.MULTILINE)) - {"code"}
TOPICS = Topics("fuzz")

# Each generated message goes in with seven mutations of it (strategies.variants).
batches_of_messages = st.lists(any_message(), min_size=1, max_size=60).map(amplified)


@pytest.fixture(scope="module")
def validator() -> Validator:
    return Validator(load_contract(), default_registry())


def placed(validator: Validator, values: list[bytes | None]) -> tuple[list[int], list[bytes]]:
    """Validate and encode; assert each value is either valid or rejected with a documented code."""
    outcome = validator.validate(values, NOW)
    encoded = validator.encode(outcome, 1)
    rejected = [i for i, _ in encoded.rejected]
    assert sorted(encoded.rows + rejected) == list(range(len(values)))
    for _, problems in encoded.rejected:
        assert problems and {p.reason for p in problems} <= DOCUMENTED, problems
    assert len(encoded.frames) == len(encoded.rows)
    return encoded.rows, encoded.frames


@examples(long=5_000)
@given(values=batches_of_messages.map(amplified))  # the validator is fast: mutations of mutations
def test_validator_places_every_message(validator: Validator, values: list[bytes | None]) -> None:
    started = time.monotonic()
    placed(validator, values)
    count("validator", len(values), started)


class Lake:
    """A real DuckLake and a loader on it; each batch is read at new offsets of one partition."""

    def __init__(self, home: Path) -> None:
        common = CommonSettings(
            bucket_url=str(home / "bucket"), catalog_url=str(home / "catalog.sqlite")
        )
        self.session = warehouse.Session(common)
        warehouse.migrate(self.session.con)
        registry = default_registry()
        bucket = Bucket.open(common.bucket_url)
        # No producer: the harness calls decode and load, never `handle`, its only user.
        no_producer = cast(Producer, None)
        self.loader = LoaderHandler(
            self.session, no_producer, TOPICS, "fuzz", "f", "salt", registry, None, bucket
        )
        self.next_offset = 0

    def load(self, frames: list[bytes]) -> int:
        """Land the frames; return how many ended in the fact table, as duplicates or rejected."""
        batch: list[Frame] = []
        for f in frames:
            batch.append((f, 0, self.next_offset, 1_764_000_000_000))
            self.next_offset += 1
        table, rejected = self.loader.decode(batch)
        manifest = self.loader.load(table, f"b-{self.next_offset}", rejected, batch)
        assert manifest is not None
        return int(manifest["rows"] + manifest["duplicates"] + manifest["rejected"])


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Lake:
    return Lake(tmp_path_factory.mktemp("lake"))


@examples(long=1_000)
@given(values=batches_of_messages)
def test_every_valid_message_is_loaded_or_rejected_by_the_loader(
    validator: Validator, lake: Lake, values: list[bytes | None]
) -> None:
    started = time.monotonic()
    _, frames = placed(validator, values)
    if frames:
        assert lake.load(frames) == len(frames)
    count("validator+loader", len(values), started)


@examples(long=1_000)
@given(frames=st.lists(st.binary(max_size=200), min_size=1, max_size=50))
def test_the_loader_places_frames_no_validator_wrote(lake: Lake, frames: list[bytes]) -> None:
    started = time.monotonic()
    assert lake.load(frames) == len(frames)
    count("loader (foreign frames)", len(frames), started)


http_bodies = st.one_of(
    st.binary(max_size=2000),
    any_message().map(lambda v: v or b""),
    st.lists(any_message(), max_size=20).map(lambda vs: b"\n".join(v or b"" for v in vs)),
    st.lists(any_message(), max_size=20).map(
        lambda vs: b"[" + b",".join(v or b"" for v in vs) + b"]"
    ),
)


@examples(long=40_000)
@given(body=http_bodies)
def test_http_bodies_are_accepted_or_refused_as_documented(body: bytes) -> None:
    started = time.monotonic()
    try:
        events = split_body(body)
    except (BadBody, EventTooLarge):
        pass
    else:
        assert events and all(e.value for e in events)
    count("http body", 1, started)


def _expected_lines(data: bytes) -> int:
    lines = [segment.rstrip(b"\r") for segment in data.split(b"\n")]
    if lines and lines[0].startswith(b"\xef\xbb\xbf"):
        lines[0] = lines[0][3:]
    return sum(1 for line in lines if line.strip())


def _replay(path: Path) -> int | None:
    """Events read from the file, or None when it is refused with an operator's one line."""
    try:
        return sum(len(b) for b in read_batches(path))
    except OperatorError as exc:
        assert "\n" not in str(exc).strip()
        return None


@examples(long=3_000)
@given(lines=st.lists(any_message(), min_size=1, max_size=20).map(amplified))
def test_jsonl_files_publish_every_line(tmp_path: Path, lines: list[bytes | None]) -> None:
    started = time.monotonic()
    data = b"\n".join(v or b"" for v in lines)
    path = tmp_path / "f.jsonl"
    path.write_bytes(data)
    # The one refusal: a line larger than a Kafka message (named in the operator's one line).
    too_large = any(len(line.rstrip(b"\r")) > MAX_EVENT_BYTES for line in data.split(b"\n"))
    assert _replay(path) == (None if too_large else _expected_lines(data))
    count("jsonl file", len(lines), started)


cells = st.one_of(texts, st.sampled_from(["", '"', '""', ",", "\n", "\r\n", "12", "-3.5", "1e400"]))


@examples(long=4_000)
@given(
    header=st.lists(keys, min_size=1, max_size=8),
    rows=st.lists(st.lists(cells, max_size=9), max_size=20),
    quote=st.booleans(),
)
def test_csv_files_are_read_or_refused_in_one_line(
    tmp_path: Path, header: list[str], rows: list[list[str]], quote: bool
) -> None:
    started = time.monotonic()

    def line(cells: list[str]) -> str:
        if quote:
            return ",".join('"' + c.replace('"', '""') + '"' for c in cells)
        return ",".join(cells)

    path = tmp_path / "f.csv"
    path.write_bytes(to_bytes("\n".join(line(r) for r in [header, *rows])))
    _replay(path)
    count("csv file", 1 + len(rows), started)


ARROW_TYPES = [
    pa.int8(), pa.int64(), pa.uint64(), pa.float16(), pa.float64(), pa.bool_(), pa.string(),
    pa.large_string(), pa.binary(), pa.date32(), pa.time64("us"), pa.timestamp("ns"),
    pa.timestamp("ms", tz="UTC"), pa.duration("s"), pa.decimal128(38, 10), pa.decimal256(76, 0),
    pa.list_(pa.int32()), pa.struct([("a", pa.string())]), pa.map_(pa.string(), pa.int64()),
    pa.null(), pa.dictionary(pa.int32(), pa.string()),
]  # fmt: skip


def _encodable(text: str) -> bool:
    """Whether a name can be written in a file at all (a lone surrogate cannot)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@st.composite
def arrow_tables(draw: st.DrawFn) -> pa.Table:
    names = draw(st.lists(keys.filter(_encodable), min_size=1, max_size=5, unique=True))
    rows = draw(st.integers(min_value=0, max_value=30))
    columns = []
    for _ in names:
        kind = draw(st.sampled_from(ARROW_TYPES))
        values = draw(st.lists(json_values(3), min_size=rows, max_size=rows))
        try:
            columns.append(pa.array(values, kind))
        except (pa.ArrowException, TypeError, ValueError, OverflowError, UnicodeError):
            columns.append(pa.nulls(rows, kind))
    return pa.table(columns, names=[n or "_" for n in names])


AVRO_VALUE = ["null", "string", "long", "double", "bytes"]


@examples(long=3_000)
@given(table=arrow_tables(), garbage=st.binary(max_size=300))
def test_parquet_and_avro_files_are_read_or_refused_in_one_line(
    tmp_path: Path, table: pa.Table, garbage: bytes
) -> None:
    started = time.monotonic()
    parquet = tmp_path / "f.parquet"
    try:
        pq.write_table(table, parquet)
    except (pa.ArrowException, ValueError):
        parquet.write_bytes(b"PAR1" + garbage)
    got = _replay(parquet)
    assert got is None or got == table.num_rows
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(parquet.read_bytes()[: len(garbage)] + garbage)
    _replay(broken)
    avro = tmp_path / "f.avro"
    buffer = io.BytesIO()
    schema = {"type": "record", "name": "e", "fields": [{"name": "v", "type": AVRO_VALUE}]}
    try:  # the harness's own values (Python stops at microseconds; the producer does not)
        values = table.column(0).slice(0, 5).to_pylist()
    except ValueError:
        values = list(range(min(5, table.num_rows)))
    fastavro.writer(buffer, schema, [{"v": repr(v)} for v in values])
    avro.write_bytes(buffer.getvalue()[: max(8, len(buffer.getvalue()) - len(garbage) % 7)])
    _replay(avro)
    (tmp_path / "g.avro").write_bytes(b"Obj\x01" + garbage)
    _replay(tmp_path / "g.avro")
    count("parquet/avro file", 4 + table.num_rows, started)


def test_the_documented_codes_are_read_from_the_docs() -> None:
    assert {"PARSE", "SIZE", "RANGE", "UNPROCESSABLE", "DUPLICATE"} <= DOCUMENTED
    assert VALID["transaction_id"] == 42
