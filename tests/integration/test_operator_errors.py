"""Operator mistakes get one line that says what to do, and a non-zero exit, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def headrace(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "headrace", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    for needle in needles:
        assert needle in lines[0]


def test_missing_file(tmp_path: Path) -> None:
    result = headrace(
        "replay", str(tmp_path / "nope.jsonl"), env={"HEADRACE_BOOTSTRAP_SERVERS": "127.0.0.1:1"}
    )
    assert_one_line_error(result)


def test_no_broker(tmp_path: Path) -> None:
    f = tmp_path / "a.jsonl"
    f.write_text("{}\n")
    result = headrace("replay", str(f), env={"HEADRACE_BOOTSTRAP_SERVERS": "127.0.0.1:1"})
    assert_one_line_error(result, "no Kafka broker answers at 127.0.0.1:1", "headrace infra start")


@pytest.mark.parametrize("service", ["stager", "validator", "loader"])
def test_bad_setting_names_the_variable(service: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", f"services.{service}"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, f"HEADRACE_{service.upper()}_PORT": "eighty"},
    )
    assert_one_line_error(result, f"HEADRACE_{service.upper()}_PORT")


def test_unreadable_file(tmp_path: Path) -> None:
    f = tmp_path / "a.parquet"
    f.write_text("this is not parquet")
    result = headrace("replay", str(f), env={"HEADRACE_BOOTSTRAP_SERVERS": "127.0.0.1:1"})
    assert result.returncode == 2 and "Traceback" not in result.stderr
