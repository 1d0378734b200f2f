"""Pure validation: a batch of raw message values in, an Arrow table of valid events and the
rejections out.

Nothing here imports Kafka. A value is either JSON or an Avro record in the Confluent wire format
(first byte 0). The fast path decodes JSON once with a msgspec decoder built from the contract,
which checks types, required fields, ranges, allowed values and patterns while it decodes; time
bounds are checked afterwards against the clock the caller passes in. Only a value that fails
takes the slow path, which checks every field on its own so one rejection lists all that is wrong.
Valid events leave as one Arrow table (time bounds are checked on its column), ready for the
column-wise Avro encoder: nothing after the decode runs once per event.

Both steps are isolated (headrace/contract/poison.py): should a record the checks passed still make
a step fail, the batch is split until that record is found, and it is rejected as UNPROCESSABLE
while the rest of the batch goes on.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import fastavro
import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from headrace.codec import avro_columns, wire_format
from headrace.codec.registry import Registry, UnknownSchemaId
from headrace.contract import poison
from headrace.contract.envelope import Problem
from headrace.contract.rules import Contract, TimeBounds
from headrace.runtime.crash_points import poison_point

STAGE = "validator"


@dataclass
class Outcome:
    """`rows[k]` is the input index of `table`'s row k; `rejected` pairs an index with why."""

    rows: list[int]
    table: pa.Table
    rejected: list[tuple[int, list[Problem]]] = field(default_factory=list)

    @property
    def valid(self) -> list[tuple[int, dict[str, Any]]]:
        """(input index, record) of every valid event, as Python objects (not for hot paths)."""
        return list(zip(self.rows, self.table.to_pylist(), strict=True))


@dataclass
class Encoded:
    """The Confluent frames of a batch's valid events, and every rejection of the batch."""

    rows: list[int]  # the input index of each frame
    frames: list[bytes]
    rejected: list[tuple[int, list[Problem]]]


_AT = re.compile(r" - at `\$\.?([^`\[]*)[^`]*`")
# msgspec's error messages are stable; each maps to one of our reason codes.
_CLASSIFY = (
    (re.compile(r"^Object missing required field `([^`]+)`"), "MISSING"),
    (re.compile(r"^Object contains unknown field `([^`]+)`"), "UNKNOWN_FIELD"),
    (re.compile(r"^Expected `\w+`, got `null`"), "MISSING"),
    (re.compile(r"^Expected `object`, got"), "PARSE"),
    (re.compile(r"^Invalid enum value"), "ENUM"),
    (re.compile(r"matching regex"), "PATTERN"),
    (re.compile(r"datetime"), "TIME"),
    (re.compile(r"^Expected `\w+` (?:of length )?[<>]=?"), "RANGE"),
    (re.compile(r"^Expected `[\w |]+`, got"), "TYPE"),
    (re.compile(r"^Number out of range"), "TYPE"),
)
# Control bytes JSON text never starts with: a binary frame whose magic byte is wrong.
_JSON_WHITESPACE = frozenset(b" \t\r\n")
# Arrays and objects nested deeper than Python's decoders follow (about 1,000 levels, its
# recursion limit): no event of a contract's shape comes near it.
_TOO_DEEP = Problem("SIZE", None, "JSON nested too deeply (more than about 1,000 levels)")
# Epoch values by magnitude: what a number sent as a timestamp most likely meant.
_EPOCH_UNITS = ((1e11, "seconds"), (1e14, "milliseconds"), (1e17, "microseconds"))


def classify(error: msgspec.ValidationError, field_name: str | None = None) -> Problem:
    text = str(error)
    at = _AT.search(text)
    if at and at.group(1):
        field_name = f"{field_name}.{at.group(1)}" if field_name else at.group(1)
    message = _AT.sub("", text)
    for pattern, reason in _CLASSIFY:
        m = pattern.search(text)
        if m:
            if reason in ("MISSING", "UNKNOWN_FIELD") and m.groups():
                field_name = m.group(1)
            return Problem(reason, field_name, message)
    return Problem("TYPE", field_name, message)


class Validator:
    def __init__(self, contract: Contract, registry: Registry) -> None:
        self.contract = contract
        self.registry = registry
        self._decoder = msgspec.json.Decoder(contract.struct)
        self._time_fields = {b.field: b for b in contract.time_bounds}
        self._reader_schema = fastavro.parse_schema(contract.avro_schema)
        self.arrow_schema = avro_columns.arrow_schema(contract.avro_schema)
        # msgspec orders a Struct's fields its own way (required first): map them to the schema's.
        order = contract.struct.__struct_fields__
        self._columns = [order.index(f.name) for f in self.arrow_schema]
        # A value and a valid row this validator took before: the canaries of poison.isolate.
        self._good_value: list[tuple[int, bytes | None]] = []
        self._good_row: list[tuple[pa.Table, int]] = []

    def validate(self, values: list[bytes | None], now: datetime) -> Outcome:
        """Check every value; a value the checks pass but a later step of this batch cannot
        take is rejected as UNPROCESSABLE (isolated), never raised."""
        done, isolated = poison.isolate(
            list(enumerate(values)),
            lambda piece: self._validate_piece(piece, now),
            STAGE,
            self._good_value,
        )
        rows = [i for outcome in done for i in outcome.rows]
        rejected = [r for outcome in done for r in outcome.rejected]
        rejected += [(x.item[0], [x.problem]) for x in isolated]
        rejected.sort(key=lambda r: r[0])
        tables = [o.table for o in done if o.table.num_rows]
        table = pa.concat_tables(tables) if tables else self.arrow_schema.empty_table()
        if rows:
            self._good_value = [(-1, values[rows[0]])]
        return Outcome(rows, table, rejected)

    def encode(self, outcome: Outcome, schema_id: int) -> Encoded:
        """The frames of the outcome's valid events (`schema_id` is the contract's schema).

        A row that cannot be encoded is isolated and rejected as UNPROCESSABLE.
        """
        table, schema = outcome.table, self.contract.avro_schema

        def attempt(piece: Sequence[tuple[pa.Table, int]]) -> tuple[list[int], list[bytes]]:
            ks = [k for _, k in piece]
            whole = piece[0][0] is table and len(ks) == table.num_rows
            rows = piece[0][0] if whole else piece[0][0].take(ks)
            return ks, avro_columns.frames(rows, schema, schema_id)

        items = [(table, k) for k in range(table.num_rows)]
        done, isolated = poison.isolate(items, attempt, STAGE, self._good_row)
        rows = [outcome.rows[k] for ks, _ in done for k in ks]
        frames = [f for _, fs in done for f in fs]
        rejected = outcome.rejected + [(outcome.rows[x.item[1]], [x.problem]) for x in isolated]
        rejected.sort(key=lambda r: r[0])
        if table.num_rows:
            self._good_row = [(table.slice(0, 1), 0)]
        return Encoded(rows, frames, rejected)

    def _validate_piece(self, piece: Sequence[tuple[int, bytes | None]], now: datetime) -> Outcome:
        """`_validate` of some of the batch's values, with the batch's indices."""
        outcome = self._validate([v for _, v in piece], now)
        index = [i for i, _ in piece]
        return Outcome(
            [index[k] for k in outcome.rows],
            outcome.table,
            [(index[k], problems) for k, problems in outcome.rejected],
        )

    def _validate(self, values: list[bytes | None], now: datetime) -> Outcome:
        rows: list[int] = []
        events: list[msgspec.Struct] = []
        rejected: list[tuple[int, list[Problem]]] = []
        for i, value in enumerate(values):
            result = self._one(value, now)
            if isinstance(result, list):
                rejected.append((i, result))
            else:
                rows.append(i)
                events.append(result)
        poison_point(STAGE, (values[i] for i in rows))
        table = self._table(events)
        table, rows = self._check_time_bounds(table, rows, rejected, now)
        rejected.sort(key=lambda r: r[0])
        return Outcome(rows, table, rejected)

    def _table(self, events: list[msgspec.Struct]) -> pa.Table:
        if not events:
            return self.arrow_schema.empty_table()
        columns = list(zip(*map(msgspec.structs.astuple, events), strict=True))
        return pa.Table.from_arrays(
            [
                pa.array(columns[i], type=f.type)
                for i, f in zip(self._columns, self.arrow_schema, strict=True)
            ],
            schema=self.arrow_schema,
        )

    def _check_time_bounds(
        self,
        table: pa.Table,
        rows: list[int],
        rejected: list[tuple[int, list[Problem]]],
        now: datetime,
    ) -> tuple[pa.Table, list[int]]:
        """Reject the rows outside a time bound, computed on whole columns."""
        if not table.num_rows:
            return table, rows
        outside = pa.array(np.zeros(table.num_rows, dtype=bool))
        for b in self.contract.time_bounds:
            column = table.column(b.field)
            early = pc.less(column, pa.scalar(b.not_before, column.type))
            late = pc.greater(column, pa.scalar(now + b.max_future_skew, column.type))
            outside = pc.or_(outside, pc.or_(early, late))
        bad = np.flatnonzero(outside.to_numpy(zero_copy_only=False))
        if not len(bad):
            return table, rows
        for k in bad:
            record = {
                b.field: table.column(b.field)[int(k)].as_py() for b in self.contract.time_bounds
            }
            rejected.append((rows[k], self._time_problems(record, now)))
        keep = np.setdiff1d(np.arange(table.num_rows), bad)
        return table.take(keep), [rows[k] for k in keep]

    def _one(self, value: bytes | None, now: datetime) -> msgspec.Struct | list[Problem]:
        if not value or not value.strip():
            return [Problem("EMPTY", None, "empty message or tombstone")]
        if len(value) > self.contract.max_bytes:
            return [Problem("SIZE", None, f"{len(value)} bytes > {self.contract.max_bytes}")]
        if value[0] == wire_format.MAGIC:
            return self._framed(value, now)
        if value[0] < 0x20 and value[0] not in _JSON_WHITESPACE:
            return [Problem("WIRE_FORMAT", None, f"bad magic byte {value[0]}: not JSON or Avro")]
        try:
            # msgspec skips unknown fields without checking their bytes, so check all of them.
            value.decode("utf-8")
        except UnicodeDecodeError as bad:
            return [Problem("ENCODING", None, f"not UTF-8: {bad.reason} at byte {bad.start}")]
        try:
            event: msgspec.Struct = self._decoder.decode(value)
        except msgspec.ValidationError as exc:
            return self._explain_json(value, now) or [classify(exc)]
        except msgspec.DecodeError:
            return self._explain_json(value, now) or [Problem("PARSE", None, "not JSON")]
        except RecursionError:
            return [_TOO_DEEP]
        return event

    def _framed(self, value: bytes, now: datetime) -> msgspec.Struct | list[Problem]:
        try:
            schema_id, _ = wire_format.unframe(value)
        except wire_format.WireFormatError as exc:
            return [Problem("WIRE_FORMAT", None, str(exc))]
        try:
            writer = self.registry.schema(schema_id)
        except UnknownSchemaId as exc:
            return [Problem("SCHEMA_ID", None, str(exc))]
        if writer.get("name") != self.contract.record_name:
            return [Problem("SCHEMA_ID", None, f"schema id {schema_id} is {writer.get('name')}")]
        try:
            decoded = wire_format.decode(value, writer, self._reader_schema)
        except (ValueError, EOFError, IndexError, UnicodeDecodeError) as exc:
            return [Problem("WIRE_FORMAT", None, f"body is not schema {schema_id}: {exc!r}")]
        assert isinstance(decoded, dict)
        try:
            event: msgspec.Struct = msgspec.convert(decoded, self.contract.struct)
        except msgspec.ValidationError as exc:
            return self._check_fields(decoded, now) or [classify(exc)]
        return event

    def _explain_json(self, value: bytes, now: datetime) -> list[Problem]:
        """Everything wrong with a JSON value the fast path refused (the slow path)."""
        try:
            # The standard library parser accepts NaN and Infinity, so they can be named.
            obj = json.loads(value)
        except ValueError as exc:
            return [Problem("PARSE", None, f"not JSON: {exc}")]
        except RecursionError:
            return [_TOO_DEEP]
        if obj is None:
            return [Problem("EMPTY", None, "JSON null")]
        if not isinstance(obj, dict):
            return [Problem("PARSE", None, f"not a JSON object (got {type(obj).__name__})")]
        return self._check_fields(obj, now)

    def _check_fields(self, obj: dict[str, Any], now: datetime) -> list[Problem]:
        problems: list[Problem] = []
        for name, spec in self.contract.fields.items():
            v = obj.get(name)
            if v is None:
                if spec.required:
                    problems.append(Problem("MISSING", name, f"required field `{name}` missing"))
                continue
            problem = self._check_field(name, v, spec.annotation, now)
            if problem:
                problems.append(problem)
        if self.contract.unknown_fields == "reject":
            problems += [
                Problem("UNKNOWN_FIELD", k, f"`{k}` is not in {self.contract.schema_file}")
                for k in obj
                if k not in self.contract.fields
            ]
        return problems

    def _check_field(self, name: str, v: Any, annotation: Any, now: datetime) -> Problem | None:
        if isinstance(v, float) and not math.isfinite(v):
            return Problem("TYPE", name, f"{v} is not a number JSON allows")
        bounds = self._time_fields.get(name)
        if bounds and isinstance(v, int | float) and not isinstance(v, bool):
            return Problem("TIME", name, _epoch_message(v))
        try:
            converted = msgspec.convert(v, annotation, strict=True)
        except msgspec.ValidationError as exc:
            return classify(exc, name)
        if bounds:
            return _time_problem(bounds, converted, now)
        return None

    def _time_problems(self, record: dict[str, Any], now: datetime) -> list[Problem]:
        return [
            p for b in self.contract.time_bounds if (p := _time_problem(b, record[b.field], now))
        ]


def _epoch_message(v: float) -> str:
    if v <= 0:
        return (
            f"{v} is a zero or negative epoch; send an RFC 3339 time such as 2026-01-31T12:00:00Z"
        )
    unit = next((u for limit, u in _EPOCH_UNITS if v < limit), "nanoseconds")
    return (
        f"{v} looks like epoch {unit}; epoch numbers are ambiguous (seconds or milliseconds?): "
        "send an RFC 3339 time such as 2026-01-31T12:00:00Z"
    )


def _time_problem(bounds: TimeBounds, value: datetime, now: datetime) -> Problem | None:
    if value < bounds.not_before:
        return Problem(
            "TIME", bounds.field, f"{value.isoformat()} is before {bounds.not_before:%Y-%m-%d}"
        )
    if value > now + bounds.max_future_skew:
        return Problem("TIME", bounds.field, f"{value.isoformat()} is in the future")
    return None
