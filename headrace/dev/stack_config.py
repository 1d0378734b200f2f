"""Settings of `headrace stack` (env prefix HEADRACE_STACK_); the ports of Kafka, the GCS
emulator and PostgreSQL are the local infrastructure's (HEADRACE_INFRA_*)."""

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class StackSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HEADRACE_STACK_", extra="ignore")

    state_dir: Path = Field(
        Path(".headrace/stack"),
        description="Every component's data, logs and PID files (Kafka's, PostgreSQL's and the "
        "emulator's under infra/).",
    )
    service_port_base: int = Field(
        0,
        description="0: the services listen on compose's ports (8081 ... 8085); otherwise the "
        "producer on this + 1, the stager + 2, ... (a stack beside another).",
    )
    prometheus_port: int = Field(9090, description="Prometheus on 127.0.0.1 (compose: 9090).")
    alertmanager_port: int = Field(9093, description="Alertmanager on 127.0.0.1 (compose: 9093).")
    ready_timeout_seconds: float = Field(
        180.0, description="How long `stack up` waits for each component to answer."
    )
