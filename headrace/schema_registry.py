"""The file-backed schema registry: schemas/registry.json maps wire-format ids to .avsc files."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import fastavro

from headrace import wire_format
from headrace.paths import SCHEMAS_DIR


class UnknownSchemaId(LookupError):
    """A frame names a schema id the registry does not hold."""


class FileSchemaRegistry:
    def __init__(self, directory: Path = SCHEMAS_DIR) -> None:
        index = json.loads((directory / "registry.json").read_text())
        self._files = {int(i): directory / name for i, name in index["schemas"].items()}
        self._ids = {path.name: i for i, path in self._files.items()}
        self._parsed_cache: dict[int, Any] = {}

    def id_of(self, filename: str) -> int:
        return self._ids[filename]

    def schema(self, schema_id: int) -> Any:
        if schema_id not in self._files:
            raise UnknownSchemaId(f"unknown schema id {schema_id}")
        return fastavro.parse_schema(json.loads(self._files[schema_id].read_text()))

    def raw_schema(self, schema_id: int) -> str:
        return self._files[schema_id].read_text()

    def encode(self, filename: str, record: dict[str, Any]) -> bytes:
        schema_id = self.id_of(filename)
        return wire_format.encode(schema_id, self._parsed(schema_id), record)

    def decode(self, data: bytes) -> dict[str, Any]:
        schema_id, _ = wire_format.unframe(data)
        return wire_format.decode(data, self._parsed(schema_id))

    def _parsed(self, schema_id: int) -> Any:
        if schema_id not in self._parsed_cache:
            self._parsed_cache[schema_id] = self.schema(schema_id)
        return self._parsed_cache[schema_id]


@cache
def default_registry() -> FileSchemaRegistry:
    return FileSchemaRegistry()
