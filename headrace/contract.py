"""The declarative event contract: the Avro schema plus the rules beside it in schemas/.

`load_contract` turns schemas/<event>.contract.json into a msgspec Struct type, so decoding a
message also checks its types, required fields, ranges, allowed values and patterns in one pass of
C code. Time bounds, which depend on the clock, are checked after decoding.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

from headrace.paths import SCHEMAS_DIR

_AVRO_TO_PY: dict[str, Any] = {
    "long": int,
    "int": int,
    "double": float,
    "float": float,
    "string": str,
    "boolean": bool,
}
_META_KEYS = ("ge", "le", "gt", "lt", "pattern", "min_length", "max_length")


@dataclass(frozen=True)
class TimeBounds:
    field: str
    not_before: datetime
    max_future_skew: timedelta


@dataclass(frozen=True)
class Contract:
    event: str
    schema_file: str
    avro_schema: dict[str, Any]
    struct: type[msgspec.Struct]
    max_bytes: int
    time_bounds: tuple[TimeBounds, ...]


def _python_type(avro_type: Any, rules: dict[str, Any]) -> tuple[Any, bool]:
    """(annotation, nullable) for one Avro field type with its contract rules applied."""
    nullable = isinstance(avro_type, list) and "null" in avro_type
    if isinstance(avro_type, list):
        (avro_type,) = [t for t in avro_type if t != "null"]
    if isinstance(avro_type, dict) and avro_type.get("logicalType", "").startswith("timestamp"):
        base: Any = Annotated[datetime, msgspec.Meta(tz=True)]
    elif "enum" in rules:
        base = Literal[tuple(rules["enum"])]
    else:
        base = _AVRO_TO_PY[avro_type]
        meta = {k: rules[k] for k in _META_KEYS if k in rules}
        if meta:
            base = Annotated[base, msgspec.Meta(**meta)]
    return (base | None if nullable else base), nullable


def load_contract(name: str = "transaction", directory: Path = SCHEMAS_DIR) -> Contract:
    spec = json.loads((directory / f"{name}.contract.json").read_text())
    avro = json.loads((directory / spec["schema"]).read_text())
    rules: dict[str, dict[str, Any]] = spec["fields"]
    fields: list[Any] = []
    bounds = []
    for f in avro["fields"]:
        annotation, nullable = _python_type(f["type"], rules.get(f["name"], {}))
        fields.append((f["name"], annotation, None) if nullable else (f["name"], annotation))
        r = rules.get(f["name"], {})
        if "not_before" in r:
            bounds.append(
                TimeBounds(
                    f["name"],
                    datetime.fromisoformat(r["not_before"]),
                    timedelta(seconds=r.get("max_future_skew_seconds", 0)),
                )
            )
    # Required fields first: msgspec wants defaults last, and field order does not matter in JSON.
    fields.sort(key=lambda f: len(f) == 3)
    struct = msgspec.defstruct(avro["name"], fields, kw_only=True)
    return Contract(name, spec["schema"], avro, struct, spec["max_bytes"], tuple(bounds))
