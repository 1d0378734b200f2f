"""The pipeline's topics and their creation with explicit partition counts."""

from __future__ import annotations

from dataclasses import dataclass

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic


@dataclass(frozen=True)
class Topics:
    prefix: str

    @property
    def raw(self) -> str:
        return f"{self.prefix}.raw"

    @property
    def validated(self) -> str:
        return f"{self.prefix}.validated"

    @property
    def error(self) -> str:
        return f"{self.prefix}.error"

    @property
    def loaded(self) -> str:
        return f"{self.prefix}.loaded"

    def partitions(self, raw_partitions: int = 6) -> dict[str, int]:
        """Partition count of each topic. validated mirrors raw: the validator keeps partitions."""
        return {
            self.raw: raw_partitions,
            self.validated: raw_partitions,
            self.error: 3,
            self.loaded: 1,
        }


def ensure_topics(admin: AdminClient, wanted: dict[str, int], timeout: float = 30.0) -> list[str]:
    """Create the missing topics; return the names created. Existing topics are left as they are."""
    existing = set(admin.list_topics(timeout=timeout).topics)
    new = [NewTopic(name, count, 1) for name, count in wanted.items() if name not in existing]
    if not new:
        return []
    for _name, future in admin.create_topics(new, operation_timeout=timeout).items():
        try:
            future.result()
        except KafkaException as exc:
            if exc.args[0].name() != "TOPIC_ALREADY_EXISTS":
                raise
    return [t.topic for t in new]
