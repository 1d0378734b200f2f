"""Settings of the stager (env prefix HEADRACE_STAGER_)."""

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class StagerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HEADRACE_STAGER_", extra="ignore")

    port: int = Field(8082, description="Port of /healthz, /readyz and /metrics.")
    group_id: str = Field("headrace-stager", description="Consumer group on raw and error.")
    batch_max_messages: int = Field(50_000, description="Most messages per batch (all files).")
    batch_max_wait_seconds: float = Field(1.0, description="Longest wait to fill a batch.")
