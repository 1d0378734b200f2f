"""The pipeline's topics and their creation with explicit partition counts."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

# The largest message the error topic takes. An envelope carries its event's original bytes plus
# the reasons, so it is larger than the largest raw message (the broker's 1 MiB by default): at
# the broker's own limit, a big event's rejection could never be written, and the validator's
# transaction would fail on it at every retry.
ERROR_MESSAGE_MAX_BYTES = 2 * 1024 * 1024


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

    def configs(self) -> dict[str, dict[str, str]]:
        """Topic settings that differ from the broker's defaults."""
        return {self.error: {"max.message.bytes": str(ERROR_MESSAGE_MAX_BYTES)}}


def ensure_pipeline_topics(
    admin: AdminClient, topics: Topics, raw_partitions: int = 6
) -> list[str]:
    """Create the pipeline's missing topics with their partition counts and settings."""
    return ensure_topics(admin, topics.partitions(raw_partitions), configs=topics.configs())


def ensure_topics(
    admin: AdminClient,
    wanted: dict[str, int],
    timeout: float = 30.0,
    configs: Mapping[str, dict[str, str]] | None = None,
) -> list[str]:
    """Create the missing topics; return the names created. Existing topics are left as they are."""
    existing = set(admin.list_topics(timeout=timeout).topics)
    settings = configs or {}
    new = [
        NewTopic(name, count, 1, config=settings.get(name, {}))
        for name, count in wanted.items()
        if name not in existing
    ]
    if not new:
        return []
    for _name, future in admin.create_topics(new, operation_timeout=timeout).items():
        try:
            future.result()
        except KafkaException as exc:
            if exc.args[0].name() != "TOPIC_ALREADY_EXISTS":
                raise
    return [t.topic for t in new]
