"""Settings shared by every service: one environment variable per field, HEADRACE_ prefix."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Annotated, Literal, TypeVar

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from headrace.runtime.errors import OperatorError
from headrace.runtime.paths import SCHEMAS_DIR

S = TypeVar("S", bound=BaseSettings)


class CommonSettings(BaseSettings):
    """Connection settings every service reads."""

    model_config = SettingsConfigDict(env_prefix="HEADRACE_", extra="ignore")

    bootstrap_servers: str = Field("127.0.0.1:19092", description="Kafka bootstrap servers.")
    topic_prefix: str = Field("headrace", description="Prefix of every topic: <prefix>.raw, ...")
    topic_replication_factor: Annotated[int, Field(ge=1)] | Literal["auto"] = Field(
        "auto",
        description="Copies of each partition of the topics `headrace topics` creates; auto: 3 "
        "on three brokers or more, else one per broker.",
    )
    topic_min_insync_replicas: Annotated[int, Field(ge=1)] | Literal["auto"] = Field(
        "auto",
        description="Copies that must have a write before it is acknowledged (acks=all); "
        "auto: 2 with three copies, else 1.",
    )
    bucket_url: str = Field(
        ".headrace/bucket",
        description="Bucket root: a local folder (default) or gs://bucket/prefix.",
    )
    catalog_url: str = Field(
        ".headrace/warehouse/catalog.sqlite",
        description="DuckLake catalog: a SQLite file path, or postgres:dbname=... for many nodes.",
    )
    gcs_endpoint: str | None = Field(
        None, description="GCS API endpoint for gs:// (an emulator in tests); unset for real GCS."
    )
    instance_id: str = Field(
        default_factory=socket.gethostname,
        description="Stable name of this replica (the pod name on Kubernetes).",
    )
    account_key_salt: str = Field(
        "headrace", description="Secret mixed into account keys so they cannot be reversed."
    )
    http_host: str = Field("127.0.0.1", description="Address of the health/metrics server.")
    log_level: str = Field("INFO", description="Python logging level.")
    watchdog_seconds: float = Field(
        120.0, description="Exit (for a restart) when the main loop is stuck this long."
    )
    memory_budget_mb: int = Field(
        256,
        ge=64,
        description="This process's memory budget: batches, client queues and DuckDB fit in it.",
    )
    duckdb_threads: int = Field(
        1,
        ge=1,
        description="DuckDB threads of a service's warehouse session (analysts' connections "
        "use every core).",
    )
    schemas_dir: Path = Field(
        SCHEMAS_DIR,
        description="Schemas, contracts and registry.json (a changed contract is reloaded); "
        "default: schemas/ of the checkout, or the copy inside an installed package.",
    )
    schema_registry_url: str | None = Field(
        None,
        description="Confluent Schema Registry URL (mock:// in tests); unset: the file registry.",
    )


class ConsumerServiceSettings(BaseSettings):
    """What every consuming service (stager, validator, loader) sets for itself.

    Each service subclasses it with its own env prefix (HEADRACE_<SERVICE>_) and defaults.
    """

    model_config = SettingsConfigDict(extra="ignore")

    port: int = Field(8080, description="Port of /healthz, /readyz and /metrics.")
    group_id: str = Field("headrace", description="Kafka consumer group.")
    batch_max_messages: int = Field(10_000, description="Most messages in one batch.")
    batch_max_wait_seconds: float = Field(
        0.5, description="Longest a batch waits after its first message: quiet partitions flush."
    )
    batch_max_bytes: int = Field(
        0, description="Most message bytes in one batch; 0: an eighth of the memory budget."
    )
    batch_max_span_seconds: float = Field(
        0, description="Most record-time span in one batch (cuts late data apart); 0: no limit."
    )
    batch_max_handle_seconds: float = Field(
        300.0,
        description="A batch still being handled after this long counts as stuck: exit, restart.",
    )
    prefetch_messages: int = Field(
        5_000,
        ge=1,
        description="Messages the Kafka client fetches ahead per partition (queued.min.messages).",
    )
    session_timeout_ms: int = Field(
        45_000,
        description="Kafka group session timeout: how soon a dead replica's partitions move.",
    )
    max_poll_interval_ms: int = Field(
        300_000, description="Longest gap between polls before the group evicts this replica."
    )

    def consumer_overrides(self) -> dict[str, int]:
        return {
            "queued.min.messages": self.prefetch_messages,
            "session.timeout.ms": self.session_timeout_ms,
            "max.poll.interval.ms": self.max_poll_interval_ms,
        }


def load(cls: type[S]) -> S:
    """Build settings from the environment, turning every problem into one operator message."""
    try:
        return cls()
    except ValidationError as exc:
        prefix = cls.model_config.get("env_prefix", "")
        problems = "; ".join(
            f"{prefix}{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}"
            for e in exc.errors()
        )
        raise OperatorError(
            f"invalid settings ({problems}); fix the environment and retry"
        ) from None


def is_postgres(catalog_url: str) -> bool:
    """Whether a catalog setting names a PostgreSQL catalog (`postgres:<libpq DSN>`)."""
    return catalog_url.startswith("postgres:")


def resolve_local(path: str) -> str:
    """Absolute form of a local path setting (gs:// and other URLs are returned as they are)."""
    if "://" in path or is_postgres(path):
        return path
    return str(Path(path).expanduser().resolve())
