"""Settings of the local infrastructure (env prefix HEADRACE_INFRA_)."""

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class InfraSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HEADRACE_INFRA_", extra="ignore")

    state_dir: Path = Field(
        Path(".headrace/infra"),
        description="Broker, emulator and PostgreSQL data, logs and PID files.",
    )
    cache_dir: Path = Field(
        Path.home() / ".cache" / "headrace",
        description="Downloads (Kafka jars from Maven Central), kept outside the repository.",
    )
    kafka_port: int = Field(
        19092, description="Kafka client listener on 127.0.0.1; node n of a cluster: + 2(n-1)."
    )
    kafka_controller_port: int = Field(
        19093, description="KRaft controller listener; node n of a cluster: + 2(n-1)."
    )
    kafka_metrics_port: int = Field(
        19099,
        description="Prometheus metrics of the broker (JMX exporter agent) on 127.0.0.1; node n "
        "of a local cluster serves them on this port + 10 * (n - 1).",
    )
    kafka_heap: str = Field("768m", description="Broker JVM heap (-Xmx).")
    kafka_node_heap: str = Field(
        "512m", description="JVM heap (-Xmx) of each node of a cluster (infra start --brokers N)."
    )
    gcs_port: int = Field(19443, description="Port of the GCS API emulator.")
    gcs_bucket: str = Field("headrace", description="Bucket the emulator creates at start.")
    postgres_port: int = Field(
        19432, description="Port of the local PostgreSQL catalog server on 127.0.0.1."
    )
    postgres_password: str = Field(
        "headrace-laptop",
        description="Password of the local PostgreSQL user headrace (as in docker-compose.yml).",
    )

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.kafka_port}"

    @property
    def gcs_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.gcs_port}"
