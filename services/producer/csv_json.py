"""CSV rows to JSON objects, a column at a time with pyarrow.compute (no per-row Python).

Every CSV cell is read as text. A cell goes into the JSON object as written when its field is a
number (or boolean) in the event schema and the text is a JSON number (or `true`/`false`);
otherwise it goes as a JSON string, so a cell like `12,5` in an amount column reaches the
validator as "12,5" and only that row is rejected (TYPE). Empty cells become null. Typing by the
schema, not by sniffing the data, keeps `account_number` 000123... a string and keeps one bad cell
from changing the type of a whole column.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from headrace.contract.rules import ContractError, load_contract
from headrace.runtime.errors import OperatorError


class Kind(Enum):
    NUMBER = "number"
    BOOLEAN = "boolean"


_NUMERIC = {"int", "long", "float", "double"}
# JSON's number grammar (RFC 8259): no leading zeros, no '+', no bare '.5', no spaces.
_JSON_NUMBER = r"^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?$"
_ESCAPES = (("\\", "\\\\"), ('"', '\\"'), ("\n", "\\n"), ("\r", "\\r"), ("\t", "\\t"))
_OTHER_CONTROLS = [c for c in range(0x20) if chr(c) not in "\n\r\t"]
_NEEDS_ESCAPE = r'["\\\x00-\x1f]'


def field_kinds(schemas_dir: Path, event: str = "transaction") -> dict[str, Kind]:
    """Fields the event schema types as numbers or booleans (logical types such as timestamps
    are written as text, which is how the validator reads them)."""
    try:
        schema = load_contract(event, schemas_dir).avro_schema
    except ContractError as exc:
        raise OperatorError(f"cannot read the event schema to type CSV cells: {exc}") from None
    kinds: dict[str, Kind] = {}
    for f in schema["fields"]:
        types = f["type"] if isinstance(f["type"], list) else [f["type"]]
        plain = [t for t in types if isinstance(t, str) and t != "null"]
        if plain and plain[0] in _NUMERIC:
            kinds[f["name"]] = Kind.NUMBER
        elif plain and plain[0] == "boolean":
            kinds[f["name"]] = Kind.BOOLEAN
    return kinds


def json_string(text: pa.Array) -> pa.Array:
    """Each value as a quoted, escaped JSON string (nulls stay null)."""
    return pc.binary_join_element_wise('"', _escaped(text), '"', "")


def _escaped(text: pa.Array) -> pa.Array:
    """The values with JSON's escapes applied (one regex pass when there is nothing to escape)."""
    if not pc.any(pc.match_substring_regex(text, _NEEDS_ESCAPE)).as_py():
        return text
    for old, new in _ESCAPES:
        text = pc.replace_substring(text, old, new)
    for code in _OTHER_CONTROLS:
        text = pc.replace_substring(text, chr(code), f"\\u{code:04x}")
    return text


def _fragment(text: pa.Array, kind: Kind | None) -> tuple[pa.Array, bool]:
    """The column's JSON values, and whether they still need quotes around every one of them.

    The common case (a text column without empty cells, a number column of numbers) needs no
    per-cell work: the quotes go into the literal text between columns.
    """
    if kind is Kind.NUMBER:
        literal = pc.match_substring_regex(text, _JSON_NUMBER)
    elif kind is Kind.BOOLEAN:
        literal = pc.is_in(text, pa.array(["true", "false"]))
    else:
        if text.null_count == 0:
            return _escaped(text), True
        return pc.fill_null(json_string(text), "null"), False
    if text.null_count == 0 and pc.all(literal).as_py():
        return text, False
    return pc.fill_null(pc.if_else(literal, text, json_string(text)), "null"), False


def json_objects(batch: pa.RecordBatch, names: list[str], kinds: dict[str, Kind]) -> list[bytes]:
    """One JSON object per row, with `names` as keys, in column order."""
    if batch.num_rows == 0:
        return []
    pieces: list[str | pa.Array] = []
    before = "{"
    for name, column in zip(names, batch.columns, strict=True):
        fragment, quote = _fragment(column, kinds.get(name))
        label = orjson.dumps(name).decode() + ":"
        pieces += [before + label + ('"' if quote else ""), fragment]
        before = '",' if quote else ","
    pieces.append(before[:-1] + "}")
    objects = pc.binary_join_element_wise(*pieces, "")
    values: list[bytes] = pc.cast(objects, pa.binary()).to_pylist()
    return values
