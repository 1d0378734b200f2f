"""The body of POST /v1/events as messages: a JSON object, a JSON array of objects, or NDJSON.

Pure. Each event keeps the bytes the client sent (an array's items are cut out of the body, not
re-serialized, so `1.50` stays `1.50`). Unlike a JSONL file, a request is all or nothing: one line
or item that is not a JSON object rejects the whole request with every problem listed, so the
client fixes it and sends it again; nothing of it is published.
"""

from __future__ import annotations

import msgspec

from services.producer.events import MAX_EVENT_BYTES, TOO_DEEP, RawEvent, parse_object

MAX_PROBLEMS = 20  # listed in a 400 answer; the count says how many there were in all


class BadBody(Exception):
    def __init__(self, problems: list[str], total: int | None = None) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems[:MAX_PROBLEMS]
        self.total = len(problems) if total is None else total


class EventTooLarge(Exception):
    """An event larger than a Kafka message can be (answered 413)."""


def split_body(body: bytes) -> list[RawEvent]:
    """The request's events (`row` is the NDJSON line or array item, 1-based)."""
    text = body.strip()
    if not text:
        raise BadBody(["body: empty; send a JSON object, an array of objects, or NDJSON"])
    _check_utf8(body)
    if text.startswith(b"["):
        events = _array(text)
    else:
        try:
            events = [RawEvent(text, parse_object(text), 1)]
        except (msgspec.DecodeError, msgspec.ValidationError):
            events = _ndjson(text)  # not one object: several, one per line
    for e in events:
        if len(e.value) > MAX_EVENT_BYTES:
            raise EventTooLarge(
                f"event {e.row}: {len(e.value):,} bytes, more than the {MAX_EVENT_BYTES:,} "
                "a Kafka message can hold"
            )
    return events


def _check_utf8(body: bytes) -> None:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as bad:
        line = body.count(b"\n", 0, bad.start) + 1
        raise BadBody([f"line {line}: not UTF-8 (byte 0x{body[bad.start]:02x})"]) from None


def _array(text: bytes) -> list[RawEvent]:
    try:
        items = msgspec.json.decode(text, type=list[msgspec.Raw])
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise BadBody([f"body: not a JSON array: {exc}"]) from None
    except RecursionError:
        raise BadBody([f"body: {TOO_DEEP}"]) from None
    if not items:
        raise BadBody(["body: an empty array; send at least one event"])
    events, problems = [], []
    for number, item in enumerate(items, start=1):
        value = bytes(item)
        if not value.startswith(b"{"):
            problems.append(f"item {number}: not a JSON object")
            continue
        try:
            events.append(RawEvent(value, parse_object(value), number))
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            problems.append(f"item {number}: not a JSON object ({exc})")
    if problems:
        raise BadBody(problems)
    return events


def _ndjson(text: bytes) -> list[RawEvent]:
    events, problems = [], []
    for number, line in enumerate(text.split(b"\n"), start=1):
        value = line.strip()
        if not value:
            continue
        try:
            events.append(RawEvent(value, parse_object(value), number))
        except msgspec.ValidationError:
            problems.append(f"line {number}: not a JSON object")
        except msgspec.DecodeError as exc:
            problems.append(f"line {number}: not JSON ({exc})")
    if problems:
        raise BadBody(problems)
    return events
