"""The declarative event contract: the Avro schema plus the rules beside it in schemas/.

`load_contract` turns schemas/<event>.contract.json into a msgspec Struct type, so decoding a
message also checks its types, required fields, ranges, allowed values and patterns in one pass of
C code. Time bounds, which depend on the clock, are checked after decoding. `ContractWatcher`
reloads the contract when its files change, so a relaxed rule or a new schema version takes
effect without restarting the validator.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

from headrace.runtime.paths import SCHEMAS_DIR

log = logging.getLogger(__name__)

_AVRO_TO_PY: dict[str, Any] = {
    "long": int,
    "int": int,
    "double": float,
    "float": float,
    "string": str,
    "boolean": bool,
}
_META_KEYS = ("ge", "le", "gt", "lt", "pattern", "min_length", "max_length")
# What each numeric Avro type can hold. A contract's bounds are narrowed to these, so a value no
# later step could store (an id beyond int64, a float beyond float32) is a RANGE rejection of
# its own field, never a failure of the whole batch when it is encoded.
_FLOAT32_MAX = 3.4028234663852886e38
_TYPE_BOUNDS: dict[str, tuple[float, float]] = {
    "long": (-(2**63), 2**63 - 1),
    "int": (-(2**31), 2**31 - 1),
    "float": (-_FLOAT32_MAX, _FLOAT32_MAX),
}
UNKNOWN_FIELD_POLICIES = ("reject", "ignore")


@dataclass(frozen=True)
class TimeBounds:
    field: str
    not_before: datetime
    max_future_skew: timedelta


@dataclass(frozen=True)
class FieldSpec:
    """One field's type with its rules applied, for checking a field on its own."""

    annotation: Any
    required: bool


@dataclass(frozen=True)
class Contract:
    event: str
    schema_file: str
    avro_schema: dict[str, Any]
    struct: type[msgspec.Struct]
    fields: dict[str, FieldSpec]
    max_bytes: int
    time_bounds: tuple[TimeBounds, ...]
    unknown_fields: str  # "reject" or "ignore"

    @property
    def record_name(self) -> str:
        namespace = self.avro_schema.get("namespace")
        name = str(self.avro_schema["name"])
        return f"{namespace}.{name}" if namespace else name


class ContractError(ValueError):
    """The contract files are missing or inconsistent."""


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
        if avro_type in _TYPE_BOUNDS:
            meta = _within(meta, *_TYPE_BOUNDS[avro_type])
        if meta:
            base = Annotated[base, msgspec.Meta(**meta)]
    return base, nullable


def _within(meta: dict[str, Any], low: float, high: float) -> dict[str, Any]:
    """`meta`'s numeric bounds narrowed to [low, high] (a type's range)."""
    out = dict(meta)
    if "gt" in out and out["gt"] < low:
        del out["gt"]
    if "gt" not in out:
        out["ge"] = max(out.get("ge", low), low)
    if "lt" in out and out["lt"] > high:
        del out["lt"]
    if "lt" not in out:
        out["le"] = min(out.get("le", high), high)
    return out


def load_contract(name: str = "transaction", directory: Path = SCHEMAS_DIR) -> Contract:
    try:
        spec = json.loads((directory / f"{name}.contract.json").read_text())
        avro = json.loads((directory / spec["schema"]).read_text())
    except (OSError, ValueError, KeyError) as exc:
        raise ContractError(f"{directory}/{name}.contract.json: {exc}") from None
    rules: dict[str, dict[str, Any]] = spec["fields"]
    unknown = [f for f in rules if f not in {a["name"] for a in avro["fields"]}]
    if unknown:
        raise ContractError(f"{name}.contract.json has rules for fields not in {spec['schema']}")
    policy = spec.get("unknown_fields", "reject")
    if policy not in UNKNOWN_FIELD_POLICIES:
        raise ContractError(f"unknown_fields must be one of {UNKNOWN_FIELD_POLICIES}")
    struct_fields: list[Any] = []
    specs: dict[str, FieldSpec] = {}
    bounds = []
    for f in avro["fields"]:
        r = rules.get(f["name"], {})
        base, nullable = _python_type(f["type"], r)
        specs[f["name"]] = FieldSpec(base, required=not nullable)
        if nullable:
            struct_fields.append((f["name"], base | None, None))
        else:
            struct_fields.append((f["name"], base))
        if "not_before" in r:
            bounds.append(
                TimeBounds(
                    f["name"],
                    datetime.fromisoformat(r["not_before"]),
                    timedelta(seconds=r.get("max_future_skew_seconds", 0)),
                )
            )
    # Required fields first: msgspec wants defaults last, and field order does not matter in JSON.
    struct_fields.sort(key=lambda f: len(f) == 3)
    struct = msgspec.defstruct(
        avro["name"], struct_fields, kw_only=True, forbid_unknown_fields=policy == "reject"
    )
    return Contract(
        name, spec["schema"], avro, struct, specs, spec["max_bytes"], tuple(bounds), policy
    )


class ContractWatcher:
    """The current contract, reloaded when its files change (checked at most every `every` s).

    A contract that fails to load is logged and the previous one kept: a typo in a rules file
    must not stop validation.
    """

    def __init__(
        self, directory: Path = SCHEMAS_DIR, name: str = "transaction", every: float = 1.0
    ) -> None:
        self.directory, self.name, self.every = directory, name, every
        self._contract = load_contract(name, directory)
        self._stamp = self._files_stamp()
        self._checked = time.monotonic()

    def current(self) -> Contract:
        now = time.monotonic()
        if now - self._checked >= self.every:
            self._checked = now
            stamp = self._files_stamp()
            if stamp != self._stamp:
                self._stamp = stamp
                try:
                    self._contract = load_contract(self.name, self.directory)
                    log.info("contract reloaded: %s", self._contract.schema_file)
                except ContractError as exc:
                    log.error("contract not reloaded, keeping the previous one: %s", exc)
        return self._contract

    def _files_stamp(self) -> tuple[tuple[str, int, int], ...]:
        files = (f"{self.name}.contract.json", self._contract_schema_file())
        return tuple((f, *_stat(self.directory / f)) for f in files)

    def _contract_schema_file(self) -> str:
        try:
            spec = json.loads((self.directory / f"{self.name}.contract.json").read_text())
            return str(spec["schema"])
        except (OSError, ValueError, KeyError):
            return ""


def _stat(path: Path) -> tuple[int, int]:
    try:
        st = os.stat(path)
    except OSError:
        return (0, 0)
    return (st.st_mtime_ns, st.st_size)
