"""Settings of the validator (env prefix HEADRACE_VALIDATOR_)."""

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from headrace.runtime.registry import VALIDATOR
from headrace.runtime.settings import ConsumerServiceSettings


class ValidatorSettings(ConsumerServiceSettings):
    model_config = SettingsConfigDict(env_prefix="HEADRACE_VALIDATOR_", extra="ignore")

    port: int = Field(VALIDATOR.port, description="Port of /healthz, /readyz and /metrics.")
    group_id: str = Field(VALIDATOR.group, description="Kafka consumer group.")
    batch_max_messages: int = Field(10_000, description="Most messages in one batch.")
    batch_max_wait_seconds: float = Field(0.2, description="Longest wait to fill a batch.")
    # Every transactional call times out at 30 s; a batch in hand far longer is stuck in
    # librdkafka (seen: send_offsets_to_transaction past its timeout after a broker restart).
    batch_max_handle_seconds: float = Field(
        120.0,
        description="A batch still being handled after this long counts as stuck: exit, restart.",
    )
