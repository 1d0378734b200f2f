"""Schema registries: the file-backed one (default) or a Confluent Schema Registry by URL.

Both frame records in the Confluent wire format, so either kind of consumer reads what headrace
writes. The file registry maps ids to .avsc files in schemas/registry.json; it re-reads the index
when it meets an id it does not know, so a schema version added while services run is picked up
without a restart. With `HEADRACE_SCHEMA_REGISTRY_URL` set, ids come from that registry through
confluent-kafka's client (`mock://...` gives its in-process mock, used by the tests).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import fastavro

from headrace.codec import wire_format
from headrace.runtime.paths import SCHEMAS_DIR
from headrace.runtime.settings import CommonSettings

if TYPE_CHECKING:
    from headrace.codec.confluent_registry import ConfluentRegistry


class UnknownSchemaId(LookupError):
    """A frame names a schema id the registry does not hold."""


class Registry(Protocol):
    def id_of(self, filename: str) -> int:
        """The id of the schema in schemas/<filename> (registered first where that applies)."""

    def schema(self, schema_id: int) -> Any:
        """The parsed schema of an id; raises UnknownSchemaId."""

    def definition(self, schema_id: int) -> dict[str, Any]:
        """The schema of an id as written (JSON); raises UnknownSchemaId."""

    def encode(self, filename: str, record: dict[str, Any]) -> bytes:
        """`record` framed with the id of the schema in schemas/<filename>."""

    def decode(self, data: bytes) -> dict[str, Any]:
        """A frame decoded with its writer's schema."""


class RegistryCodec:
    """Parsed schemas, encode and decode on top of `definition` and `id_of`, for both registries."""

    directory: Path
    _parsed: dict[int, Any]

    def definition(self, schema_id: int) -> dict[str, Any]:
        raise NotImplementedError

    def id_of(self, filename: str) -> int:
        raise NotImplementedError

    def schema(self, schema_id: int) -> Any:
        if schema_id not in self._parsed:
            self._parsed[schema_id] = fastavro.parse_schema(self.definition(schema_id))
        return self._parsed[schema_id]

    def encode(self, filename: str, record: dict[str, Any]) -> bytes:
        schema_id = self.id_of(filename)
        return wire_format.encode(schema_id, self.schema(schema_id), record)

    def decode(self, data: bytes) -> dict[str, Any]:
        schema_id, _ = wire_format.unframe(data)
        return wire_format.decode(data, self.schema(schema_id))


class FileSchemaRegistry(RegistryCodec):
    def __init__(self, directory: Path = SCHEMAS_DIR) -> None:
        self.directory = directory
        self._parsed: dict[int, Any] = {}
        self._reload()

    def _reload(self) -> None:
        index = json.loads((self.directory / "registry.json").read_text())
        self._files: dict[int, Path] = {
            int(i): self.directory / name for i, name in index["schemas"].items()
        }
        self._ids: dict[str, int] = {path.name: i for i, path in self._files.items()}

    def id_of(self, filename: str) -> int:
        if filename not in self._ids:
            self._reload()
        return self._ids[filename]

    def raw_schema(self, schema_id: int) -> str:
        if schema_id not in self._files:
            self._reload()
        if schema_id not in self._files:
            raise UnknownSchemaId(f"unknown schema id {schema_id}")
        return self._files[schema_id].read_text()

    def definition(self, schema_id: int) -> dict[str, Any]:
        definition: dict[str, Any] = json.loads(self.raw_schema(schema_id))
        return definition


@cache
def _registry(directory: Path, url: str | None) -> FileSchemaRegistry | ConfluentRegistry:
    if url:
        # Imported only here: confluent-kafka's registry client brings an HTTP and auth stack
        # (~14 MiB resident) that services on the file registry never use.
        from headrace.codec.confluent_registry import ConfluentRegistry, client

        return ConfluentRegistry(client(url), directory)
    return FileSchemaRegistry(directory)


def registry_for(common: CommonSettings) -> FileSchemaRegistry | ConfluentRegistry:
    """The registry a service's settings name (one per process and setting)."""
    return _registry(Path(common.schemas_dir), common.schema_registry_url)


def default_registry() -> FileSchemaRegistry | ConfluentRegistry:
    """The file registry of the repository's schemas/ (tools and tests without settings)."""
    return _registry(SCHEMAS_DIR, None)
