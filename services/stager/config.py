"""Settings of the stager (env prefix HEADRACE_STAGER_)."""

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from headrace.settings import ConsumerServiceSettings


class StagerSettings(ConsumerServiceSettings):
    model_config = SettingsConfigDict(env_prefix="HEADRACE_STAGER_", extra="ignore")

    port: int = Field(8082, description="Port of /healthz, /readyz and /metrics.")
    group_id: str = Field("headrace-stager", description="Kafka consumer group.")
    batch_max_messages: int = Field(50_000, description="Most messages in one batch.")
    batch_max_wait_seconds: float = Field(1.0, description="Longest wait to fill a batch.")
