"""A Confluent-compatible Schema Registry behind headrace's `Registry`, and the reverse: the
file registry behind confluent-kafka's client interface, for its standard serdes.

Kept apart from `headrace.codec.registry` so that services on the file registry never import
confluent-kafka's registry client.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from headrace.codec.registry import FileSchemaRegistry, RegistryCodec, UnknownSchemaId
from headrace.runtime.paths import SCHEMAS_DIR


def client(url: str) -> SchemaRegistryClient:
    return SchemaRegistryClient.new_client({"url": url})


class ConfluentRegistry(RegistryCodec):
    """Ids from a Confluent-compatible Schema Registry; subjects are record full names.

    The record-name strategy lets v1 and v2 of a record be versions of one subject whatever
    topic carries them; readers look schemas up by id and never need the subject.
    """

    def __init__(self, client: SchemaRegistryClient, directory: Path = SCHEMAS_DIR) -> None:
        self.client, self.directory = client, directory
        self._ids: dict[str, int] = {}
        self._parsed: dict[int, Any] = {}

    def id_of(self, filename: str) -> int:
        if filename not in self._ids:
            text = (self.directory / filename).read_text()
            definition = json.loads(text)
            subject = ".".join(filter(None, [definition.get("namespace"), definition["name"]]))
            self._ids[filename] = self.client.register_schema(subject, Schema(text, "AVRO"))
        return self._ids[filename]

    def definition(self, schema_id: int) -> dict[str, Any]:
        try:
            found = self.client.get_schema(schema_id)
        except SchemaRegistryError as exc:
            raise UnknownSchemaId(f"unknown schema id {schema_id} ({exc})") from None
        definition: dict[str, Any] = json.loads(found.schema_str or "")
        return definition


class FileRegistryClient(SchemaRegistryClient):
    """confluent-kafka's client interface over the file registry, for its standard serdes.

    `AvroDeserializer(FileRegistryClient())` reads headrace's topics with no registry server.
    """

    def __init__(self, directory: Path = SCHEMAS_DIR) -> None:
        # The base client only talks HTTP when a lookup reaches it; every lookup is served here.
        super().__init__({"url": "http://file-registry.invalid"})
        self._files = FileSchemaRegistry(directory)

    def get_schema(self, schema_id: int, *args: Any, **kwargs: Any) -> Schema:
        return Schema(self._files.raw_schema(schema_id), "AVRO")

    def get_associations_by_resource_name(self, *args: Any, **kwargs: Any) -> list[Any]:
        # Topics have no registry associations here: serdes fall back to their name strategy.
        return []
