"""Settings of the summarizer (env prefix HEADRACE_SUMMARIZER_)."""

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from headrace.runtime.registry import SUMMARIZER
from headrace.runtime.settings import CommonSettings, is_postgres, resolve_local

SNAPSHOT_NAME = "marts.duckdb"


class SummarizerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HEADRACE_SUMMARIZER_", extra="ignore")

    port: int = Field(
        SUMMARIZER.port, description="Port of /healthz, /readyz, /metrics and /dashboard."
    )
    group_id: str = Field(SUMMARIZER.group, description="Faust app id / consumer group.")
    catch_up_seconds: float = Field(
        5.0, description="How often to refresh days of batches whose manifest never arrived."
    )
    refresh_max_seconds: float = Field(
        300.0,
        description="A refresh still running after this long counts as stuck: exit, restart.",
    )
    data_dir: str = Field(".headrace/summarizer", description="Faust's local state folder.")
    hourly_days: int = Field(
        7, ge=1, description="Days kept in hourly_volume, ending on the newest day with data."
    )
    snapshot_path: str = Field(
        "",
        description="The BI snapshot file; empty: marts.duckdb beside a SQLite catalog, "
        "else in data_dir.",
    )
    snapshot_min_interval_seconds: float = Field(
        2.0, description="Shortest time between two rewrites of the BI snapshot."
    )
    dashboard_days: int = Field(60, ge=1, description="Days shown by the dashboard's charts.")
    dashboard_refresh_seconds: int = Field(
        15, ge=1, description="How often an open dashboard page reloads itself."
    )

    def snapshot_file(self, common: CommonSettings) -> Path:
        if self.snapshot_path:
            return Path(resolve_local(self.snapshot_path))
        if is_postgres(common.catalog_url):
            return Path(resolve_local(self.data_dir)) / SNAPSHOT_NAME
        return Path(resolve_local(common.catalog_url)).parent / SNAPSHOT_NAME
