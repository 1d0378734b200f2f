"""Generated inputs for the fuzz tests: arbitrary bytes, arbitrary JSON text, near-valid events.

JSON is generated as text, not through a JSON library, so it can hold what libraries refuse to
write: duplicate keys, NaN and Infinity tokens, numbers beyond any machine type, escaped lone
surrogates, nesting deeper than any recursion limit.
"""

from __future__ import annotations

import json
import random
import zlib
from typing import Any

from hypothesis import strategies as st

from headrace.codec.registry import default_registry
from tests.unit.test_validator_core import GOOD

# The valid event the validator's unit tests spoil field by field.
VALID: dict[str, Any] = GOOD


class Token(str):
    """JSON text written as it is (a number or literal a serializer would not produce)."""


class Obj(list[tuple[str, Any]]):
    """A JSON object as its (key, value) pairs, in order, keys possibly repeated."""


TOKENS = [
    "NaN", "Infinity", "-Infinity", "1e400", "-1e400", "1e-400", "-0", "0.0", "1E+2",
    "9223372036854775807", "9223372036854775808", "-9223372036854775809",
    "18446744073709551616", "123456789012345678901234567890123456789",
    "3.4028235e38", "1.7976931348623157e308", "4.9e-324", "00", "01", "1.", ".5", "+1",
    "true", "false", "null", "tru", "nul",
]  # fmt: skip

texts = st.text(alphabet=st.characters(codec=None), max_size=40) | st.sampled_from(
    ["", "\x00", "\ud800", "\udfff", "\u2028", "\ufeff", "e\u0301", "\U0001f600", "x" * 5000]
)
numbers = (
    st.integers()
    | st.integers(min_value=-(2**300), max_value=2**300)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from(TOKENS).map(Token)
)
scalars = st.none() | st.booleans() | numbers | texts
keys = st.sampled_from([*VALID, "channel", "ammount", ""]) | texts


def json_values(max_leaves: int = 12) -> st.SearchStrategy[Any]:
    return st.recursive(
        scalars,
        lambda inner: (
            st.lists(inner, max_size=4) | st.lists(st.tuples(keys, inner), max_size=4).map(Obj)
        ),
        max_leaves=max_leaves,
    )


def dump(value: Any, ascii_only: bool = False) -> str:
    """JSON text of a generated value (Token as written, Obj with its repeated keys)."""
    if isinstance(value, Token):
        return str(value)
    if isinstance(value, Obj):
        items = (
            f"{json.dumps(k, ensure_ascii=ascii_only)}: {dump(v, ascii_only)}" for k, v in value
        )
        return "{" + ", ".join(items) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(dump(v, ascii_only) for v in value) + "]"
    return json.dumps(value, ensure_ascii=ascii_only)


def to_bytes(text: str) -> bytes:
    # A lone surrogate cannot be UTF-8: written as the bytes Python would use (an ENCODING case).
    return text.encode("utf-8", "surrogatepass")


@st.composite
def deep(draw: st.DrawFn) -> bytes:
    n = draw(st.integers(min_value=500, max_value=120_000))
    inner = draw(st.sampled_from([("[" * n, "]" * n), ('{"a": ' * n, "}" * n)]))
    where = draw(st.sampled_from(["alone", "unknown field", "known field"]))
    nested = inner[0] + "1" + inner[1] if inner[0].startswith("{") else inner[0] + inner[1]
    if where == "alone":
        return nested.encode()
    field = "extra" if where == "unknown field" else "amount"
    event = dict(VALID)
    event.pop(field, None)
    return (json.dumps(event)[:-1] + f', "{field}": {nested}}}').encode()


@st.composite
def near_valid(draw: st.DrawFn) -> bytes:
    """A valid event with one to three fields changed, removed or added."""
    pairs = list(VALID.items())
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        change = draw(st.sampled_from(["replace", "remove", "add", "duplicate"]))
        at = draw(st.integers(min_value=0, max_value=len(pairs) - 1)) if pairs else 0
        if change == "replace" and pairs:
            pairs[at] = (pairs[at][0], draw(json_values(4)))
        elif change == "remove" and pairs:
            pairs.pop(at)
        elif change == "add":
            pairs.append((draw(keys), draw(json_values(4))))
        elif pairs:
            pairs.append((pairs[at][0], draw(json_values(2))))
    valid_id = draw(st.integers(min_value=1, max_value=2**40))
    pairs = [(k, valid_id if k == "transaction_id" and v == 42 else v) for k, v in pairs]
    return to_bytes(dump(Obj(pairs), ascii_only=draw(st.booleans())))


@st.composite
def valid(draw: st.DrawFn) -> bytes:
    event = {**VALID, "transaction_id": draw(st.integers(min_value=1, max_value=2**62))}
    return json.dumps(event).encode()


@st.composite
def avro_frames(draw: st.DrawFn) -> bytes:
    """A valid event in the Confluent wire format, possibly with bytes flipped or cut."""
    registry = default_registry()
    record = {
        **VALID,
        "transaction_id": draw(st.integers(min_value=1, max_value=2**62)),
        "event_time": 1_763_632_800_000_000,
    }
    frame = bytearray(registry.encode("transaction.v1.avsc", record))
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        at = draw(st.integers(min_value=0, max_value=len(frame) - 1))
        frame[at] = draw(st.integers(min_value=0, max_value=255))
    cut = draw(st.integers(min_value=0, max_value=len(frame)))
    return bytes(frame[:cut]) if draw(st.booleans()) else bytes(frame)


def any_message() -> st.SearchStrategy[bytes | None]:
    """One raw message of any kind the fuzz tests send."""
    return st.one_of(
        st.none(),
        st.binary(max_size=300),
        json_values().map(lambda v: to_bytes(dump(v))),
        near_valid(),
        near_valid(),
        valid(),
        avro_frames(),
        deep(),
    )


def variants(message: bytes | None) -> list[bytes | None]:
    """The message and seven mutations of it, cheap next to generating it: cut in half, cut one
    byte short, a byte replaced, doubled, wrapped in an array, quotes swapped, NUL appended.

    Seeded by the message, so a failing input is reproduced by its hypothesis example.
    """
    if message is None:
        return [None, b"", b"null", b"{}", b"[]", b"\x00", b" ", b"{" * 3]
    rng = random.Random(zlib.crc32(message))
    flipped = bytearray(message or b"\x00")
    flipped[rng.randrange(len(flipped))] = rng.randrange(256)
    return [
        message,
        message[: len(message) // 2],
        message[:-1],
        bytes(flipped),
        message + message,
        b"[" + message + b"]",
        message.replace(b'"', b"'"),
        message + b"\x00",
    ]


def amplified(messages: list[bytes | None]) -> list[bytes | None]:
    return [v for m in messages for v in variants(m)]
