"""What "auto" replication means per cluster size, and the settings that cannot work."""

from __future__ import annotations

import pytest

from headrace.kafka.topics import Replication, replication_for
from headrace.runtime.errors import OperatorError
from headrace.runtime.settings import CommonSettings


@pytest.mark.parametrize(
    ("brokers", "expected"),
    [
        (1, Replication(1, 1)),
        (2, Replication(2, 1)),
        (3, Replication(3, 2)),
        (5, Replication(3, 2)),
    ],
)
def test_auto_is_three_copies_two_in_sync_on_three_brokers_else_one_per_broker(
    brokers: int, expected: Replication
) -> None:
    assert replication_for(brokers) == expected


def test_settings_default_to_auto_and_take_numbers_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert CommonSettings().topic_replication_factor == "auto"
    assert CommonSettings().topic_min_insync_replicas == "auto"
    monkeypatch.setenv("HEADRACE_TOPIC_REPLICATION_FACTOR", "2")
    monkeypatch.setenv("HEADRACE_TOPIC_MIN_INSYNC_REPLICAS", "2")
    common = CommonSettings()
    assert replication_for(
        3, common.topic_replication_factor, common.topic_min_insync_replicas
    ) == Replication(2, 2)


def test_more_copies_than_brokers_names_the_setting() -> None:
    with pytest.raises(OperatorError, match=r"HEADRACE_TOPIC_REPLICATION_FACTOR=3 .* 1 broker"):
        replication_for(1, factor=3)


def test_more_in_sync_than_copies_names_the_setting() -> None:
    with pytest.raises(OperatorError, match="HEADRACE_TOPIC_MIN_INSYNC_REPLICAS=3"):
        replication_for(3, factor=2, min_insync=3)
    with pytest.raises(OperatorError, match="HEADRACE_TOPIC_MIN_INSYNC_REPLICAS=2"):
        replication_for(1, min_insync=2)
