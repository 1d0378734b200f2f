"""Settings of the producer (env prefix HEADRACE_PRODUCER_)."""

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ProducerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HEADRACE_PRODUCER_", extra="ignore")

    port: int = Field(8081, description="Port of /healthz, /readyz, /metrics and POST /v1/events.")
    rate_limit: float = Field(
        0.0, description="Most events per second a replay sends (0: no limit)."
    )
    max_request_bytes: int = Field(8 * 1024 * 1024, description="Largest accepted HTTP body.")
