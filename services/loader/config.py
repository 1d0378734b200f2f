"""Settings of the loader (env prefix HEADRACE_LOADER_)."""

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class LoaderSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HEADRACE_LOADER_", extra="ignore")

    port: int = Field(8084, description="Port of /healthz, /readyz and /metrics.")
    group_id: str = Field("headrace-loader", description="Consumer group on validated.")
    batch_max_messages: int = Field(100_000, description="Most events in one warehouse commit.")
    batch_max_wait_seconds: float = Field(
        1.0,
        description="Longest wait to fill a batch; also paces commits so other catalog writers "
        "(summarizer, other loaders) get their turn.",
    )
