"""Settings of the loader (env prefix HEADRACE_LOADER_)."""

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from headrace.runtime.registry import LOADER
from headrace.runtime.settings import ConsumerServiceSettings


class LoaderSettings(ConsumerServiceSettings):
    model_config = SettingsConfigDict(env_prefix="HEADRACE_LOADER_", extra="ignore")

    port: int = Field(LOADER.port, description="Port of /healthz, /readyz and /metrics.")
    group_id: str = Field(LOADER.group, description="Kafka consumer group.")
    batch_max_messages: int = Field(100_000, description="Most messages in one batch.")
    # The loader's wait also paces commits, so other catalog writers (summarizer, other
    # loaders) get their turn: a 30 ms commit cadence was measured to starve a summarizer.
    batch_max_wait_seconds: float = Field(1.0, description="Longest wait to fill a batch.")
    max_partitions_per_batch: int = Field(
        32,
        ge=1,
        description="Most fact partitions (files) one batch writes: a batch whose events span "
        "more days is partitioned by month, year or a longer period (a backfill).",
    )
