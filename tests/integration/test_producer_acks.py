"""Every producer of the pipeline waits for all in-sync replicas (acks=all) and is idempotent.

Checked on the configuration each factory hands to librdkafka (a recording Producer class in
place of confluent-kafka's, which then builds the real client from it) and on the faust app's
own settings, as the services build them against the real broker.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer

from headrace.kafka import clients as kafka_clients
from headrace.kafka.consumer_loop import StopFlag
from headrace.runtime.http import Heartbeat
from headrace.runtime.settings import CommonSettings
from services.loader import runner as loader_runner
from services.loader.config import LoaderSettings
from services.producer.config import ProducerSettings
from services.producer.ingest import ingest_producer
from services.summarizer import runner as summarizer_runner
from services.summarizer.config import SummarizerSettings
from services.validator import runner as validator_runner
from services.validator.config import ValidatorSettings

ACKS_ALL = {"all", "-1", -1}


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    """The configuration of every confluent-kafka Producer built while the test runs."""
    configs: list[dict[str, Any]] = []

    class RecordingProducer(Producer):
        def __init__(self, config: dict[str, Any]) -> None:
            configs.append(dict(config))
            super().__init__(config)

    monkeypatch.setattr(kafka_clients, "Producer", RecordingProducer)
    yield configs


def built(recorded: list[dict[str, Any]], make: Callable[[], object]) -> dict[str, Any]:
    before = len(recorded)
    make()
    assert len(recorded) == before + 1, "one producer per factory"
    return recorded[-1]


def test_every_confluent_producer_factory_asks_for_acks_all(
    make_settings: Callable[..., CommonSettings],
    recorded: list[dict[str, Any]],
    tmp_path: Path,
) -> None:
    common = make_settings()
    bootstrap = common.bootstrap_servers
    factories: dict[str, Callable[[], object]] = {
        "replay and reprocess": lambda: kafka_clients.producer(bootstrap),
        "replay (budgeted)": lambda: kafka_clients.budgeted_producer(common),
        "HTTP ingest": lambda: ingest_producer(bootstrap, ProducerSettings()),
        "transactional": lambda: kafka_clients.transactional_producer(bootstrap, "acks-check"),
        "validator": lambda: validator_runner.build(
            common, ValidatorSettings(), StopFlag(), Heartbeat()
        ),
        "loader": lambda: loader_runner.build(common, LoaderSettings(), StopFlag(), Heartbeat()),
    }
    for name, make in factories.items():
        config = built(recorded, make)
        assert config.get("acks") in ACKS_ALL, (name, config.get("acks"))
        assert config.get("enable.idempotence") is True, name


def test_the_summarizers_faust_producer_asks_for_acks_all(
    make_settings: Callable[..., CommonSettings], tmp_path: Path
) -> None:
    own = SummarizerSettings(data_dir=str(tmp_path / "summarizer"))
    app = summarizer_runner.make_app(summarizer_runner.Summarizer(make_settings(), own))
    assert app.conf.producer_acks == -1
