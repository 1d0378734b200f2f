"""Settings of the summarizer (env prefix HEADRACE_SUMMARIZER_)."""

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class SummarizerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HEADRACE_SUMMARIZER_", extra="ignore")

    port: int = Field(8085, description="Port of /healthz, /readyz and /metrics.")
    group_id: str = Field("headrace-summarizer", description="Faust app id / consumer group.")
    catch_up_seconds: float = Field(
        5.0, description="How often to refresh days of batches whose manifest never arrived."
    )
    data_dir: str = Field(".headrace/summarizer", description="Faust's local state folder.")
