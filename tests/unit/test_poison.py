"""Poison isolation: the records a step fails on alone are found; the rest of the batch goes on."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import duckdb
import pytest

from headrace.contract import poison


def fails_on(bad: set[int], calls: list[int] | None = None) -> Callable[[Sequence[int]], list[int]]:
    def attempt(piece: Sequence[int]) -> list[int]:
        if calls is not None:
            calls.append(len(piece))
        hit = bad.intersection(piece)
        if hit:
            raise ValueError(f"cannot take {sorted(hit)}")
        return list(piece)

    return attempt


def test_a_clean_batch_runs_once() -> None:
    calls: list[int] = []
    done, isolated = poison.isolate(list(range(1000)), fails_on(set(), calls), "t")
    assert done == [list(range(1000))] and isolated == [] and calls == [1000]


@pytest.mark.parametrize("bad", [{0}, {999}, {500}, {3, 4, 700}, set(range(0, 1000, 97))])
def test_every_bad_record_is_isolated_and_every_good_one_passes_in_order(bad: set[int]) -> None:
    done, isolated = poison.isolate(list(range(1000)), fails_on(bad), "loader")
    passed = [x for piece in done for x in piece]
    assert passed == [x for x in range(1000) if x not in bad]
    assert sorted(x.item for x in isolated) == sorted(bad)
    for x in isolated:
        assert x.problem.reason == poison.REASON
        assert x.problem.message.startswith("loader: ValueError: cannot take")


def test_one_poison_costs_a_logarithmic_number_of_attempts() -> None:
    calls: list[int] = []
    poison.isolate(list(range(10_000)), fails_on({1234}, calls), "t")
    assert len(calls) < 2 * 14 + 8


def test_settle_hands_each_isolated_record_in_its_place() -> None:
    done, _ = poison.isolate(list(range(20)), fails_on({7}), "t", settle=lambda x: [-x.item])
    assert [x for piece in done for x in piece] == [*range(7), -7, *range(8, 20)]


@pytest.mark.parametrize(
    "exc",
    [
        OSError("disk full"),
        TimeoutError("bucket"),
        duckdb.IOException("catalog"),
        duckdb.TransactionException("conflict"),
        KeyboardInterrupt(),
        poison.InfrastructureFailure("loop stopped"),
    ],
)
def test_infrastructure_failures_are_raised_not_isolated(exc: BaseException) -> None:
    def attempt(piece: Sequence[int]) -> None:
        raise exc

    with pytest.raises(type(exc)):
        poison.isolate([1, 2, 3], attempt, "t")


def test_a_broken_step_is_raised_when_the_canary_fails_too() -> None:
    def attempt(piece: Sequence[int]) -> None:
        raise ValueError("bug")

    with pytest.raises(ValueError, match="bug"):
        poison.isolate([1, 2, 3], attempt, "t", canary=[0])


def test_out_of_memory_splits_but_never_isolates_one_record() -> None:
    def attempt(piece: Sequence[int]) -> list[int]:
        if len(piece) > 10:
            raise duckdb.OutOfMemoryException("could not allocate block")
        return list(piece)

    done, isolated = poison.isolate(list(range(100)), attempt, "t")
    assert [x for p in done for x in p] == list(range(100)) and not isolated

    def never(piece: Sequence[int]) -> None:
        raise MemoryError

    with pytest.raises(MemoryError):
        poison.isolate([1, 2], never, "t")


def test_problem_message_is_one_short_line_of_utf8() -> None:
    problem = poison.problem_of("stager", ValueError("bad\n\udcff" + "x" * 2000))
    assert "\n" not in problem.message and len(problem.message) < 600
    problem.message.encode("utf-8")
