"""Settings of the stager (env prefix HEADRACE_STAGER_)."""

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from headrace.runtime.registry import STAGER
from headrace.runtime.settings import ConsumerServiceSettings


class StagerSettings(ConsumerServiceSettings):
    model_config = SettingsConfigDict(env_prefix="HEADRACE_STAGER_", extra="ignore")

    port: int = Field(STAGER.port, description="Port of /healthz, /readyz and /metrics.")
    group_id: str = Field(STAGER.group, description="Kafka consumer group.")
    # Each staged event holds its Kafka message, a record and its JSON line while the batch is in
    # hand (~2 KB): 20,000 kept the stager's peak at 198 MiB on a 1M backlog, 50,000 at 282 MiB,
    # at the same rate (docs/performance.md).
    batch_max_messages: int = Field(20_000, description="Most messages in one batch.")
    batch_max_wait_seconds: float = Field(1.0, description="Longest wait to fill a batch.")
    # A file sits in the date folder of its first record; a bounded span keeps the rest close.
    batch_max_span_seconds: float = Field(
        3600, description="Most record-time span in one file (0: no limit)."
    )
