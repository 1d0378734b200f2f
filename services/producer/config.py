"""Settings of the producer (env prefix HEADRACE_PRODUCER_)."""

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from headrace.runtime.registry import PRODUCER


class ProducerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HEADRACE_PRODUCER_", extra="ignore")

    port: int = Field(
        PRODUCER.port, description="Port of /healthz, /readyz, /metrics and POST /v1/events."
    )
    rate_limit: float = Field(
        0.0, description="Most events per second a replay sends (0: no limit)."
    )
    max_request_bytes: int = Field(
        8 * 1024 * 1024, gt=0, description="Largest accepted HTTP body (larger: 413)."
    )
    ack_timeout_seconds: float = Field(
        5.0,
        gt=0,
        description="Longest an ingest request waits for Kafka to acknowledge its events before "
        "it is answered 503; librdkafka gives up on the events at the same time.",
    )
    retry_after_seconds: int = Field(
        5, ge=1, description="Retry-After of a 503 answer (Kafka unavailable)."
    )
    idempotency_window_seconds: float = Field(
        24 * 3600.0,
        gt=0,
        description="How long an accepted request's Idempotency-Key is remembered.",
    )
    idempotency_max_keys: int = Field(
        50_000,
        gt=0,
        description="Most Idempotency-Keys remembered (~300 bytes each); the oldest go first.",
    )
