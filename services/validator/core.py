"""Pure validation: a batch of raw message values in, valid records and rejections out.

Nothing here imports Kafka. Each value is decoded once, by a msgspec decoder built from the
contract, which checks types, required fields, ranges, allowed values and patterns while it
decodes; time bounds are checked afterwards against the clock the caller passes in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import msgspec

from headrace.contract import Contract
from headrace.envelope import Problem


@dataclass
class Outcome:
    """`valid[i]` / `rejected[i]` pair the index of the input value with its result."""

    valid: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    rejected: list[tuple[int, list[Problem]]] = field(default_factory=list)


_AT = re.compile(r" - at `\$\.?([^`\[]*)[^`]*`")
# msgspec's error messages are stable; each maps to one of our reason codes.
_CLASSIFY = (
    (re.compile(r"^Object missing required field `([^`]+)`"), "MISSING"),
    (re.compile(r"^Expected `\w+`, got `null`"), "MISSING"),
    (re.compile(r"^Expected `object`, got"), "PARSE"),
    (re.compile(r"^Invalid enum value"), "ENUM"),
    (re.compile(r"matching regex"), "PATTERN"),
    (re.compile(r"datetime"), "TIME"),
    (re.compile(r"^Expected `\w+` (?:of length )?[<>]=?"), "RANGE"),
    (re.compile(r"^Expected `[\w |]+`, got"), "TYPE"),
)


def classify(error: msgspec.ValidationError) -> Problem:
    text = str(error)
    at = _AT.search(text)
    field_name = at.group(1) if at and at.group(1) else None
    message = _AT.sub("", text)
    for pattern, reason in _CLASSIFY:
        m = pattern.search(text)
        if m:
            if reason == "MISSING" and m.groups():
                field_name = m.group(1)
            return Problem(reason, field_name, message)
    return Problem("TYPE", field_name, message)


class Validator:
    def __init__(self, contract: Contract) -> None:
        self.contract = contract
        self._decoder = msgspec.json.Decoder(contract.struct)

    def validate(self, values: list[bytes | None], now: datetime) -> Outcome:
        out = Outcome()
        for i, value in enumerate(values):
            result = self._one(value, now)
            if isinstance(result, list):
                out.rejected.append((i, result))
            else:
                out.valid.append((i, result))
        return out

    def _one(self, value: bytes | None, now: datetime) -> dict[str, Any] | list[Problem]:
        if not value or not value.strip():
            return [Problem("EMPTY", None, "empty message or tombstone")]
        if len(value) > self.contract.max_bytes:
            return [Problem("SIZE", None, f"{len(value)} bytes > {self.contract.max_bytes}")]
        try:
            # msgspec skips unknown fields without checking their bytes, so check all of them.
            value.decode("utf-8")
        except UnicodeDecodeError as bad:
            return [Problem("ENCODING", None, f"not UTF-8: {bad.reason} at byte {bad.start}")]
        try:
            event = self._decoder.decode(value)
        except msgspec.ValidationError as exc:
            return [classify(exc)]
        except msgspec.DecodeError as exc:
            return [Problem("PARSE", None, f"not JSON: {exc}")]
        record = msgspec.structs.asdict(event)
        problems = [p for b in self.contract.time_bounds if (p := _time_problem(b, record, now))]
        return problems or record


def _time_problem(bounds: Any, record: dict[str, Any], now: datetime) -> Problem | None:
    value: datetime = record[bounds.field]
    if value < bounds.not_before:
        return Problem(
            "TIME", bounds.field, f"{value.isoformat()} is before {bounds.not_before:%Y-%m-%d}"
        )
    if value > now + bounds.max_future_skew:
        return Problem("TIME", bounds.field, f"{value.isoformat()} is in the future")
    return None
