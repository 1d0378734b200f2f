"""The CLI's tables: whole in a pipe or a file, fitted to the terminal when there is one."""

from __future__ import annotations

import io

import pytest

from headrace.cli import errors_view
from headrace.cli.main import make_console

LONG_FILE = "landing/2026/12/04/" + "a-very-long-upstream-file-name-" * 4 + ".jsonl"


def found() -> dict[str, object]:
    counts = dict.fromkeys(("reprocessed", "resolved", "still_failing", "rejected_again"), 0)
    return {
        "by_reason": [{"reason": "UNPROCESSABLE", "events": 3, "attempts": 0, **counts}],
        "groups": [
            {
                "day": "2026-12-04",
                "reason": "UNPROCESSABLE",
                "field": "amount",
                "source_system": "core-banking",
                "source_file": LONG_FILE,
                "source_partition": "raw/2",
                "events": 3,
                "reprocessed": 0,
                "resolved": 0,
            }
        ],
        "samples": [],
    }


def test_a_report_in_a_pipe_prints_every_cell_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    out = io.StringIO()
    errors_view.render(make_console(out), found())
    text = out.getvalue()
    assert LONG_FILE in text and "UNPROCESSABLE" in text
    assert max(len(line) for line in text.splitlines()) < 1_000  # as wide as the content


def test_columns_still_decides_the_width(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    out = io.StringIO()
    errors_view.render(make_console(out), found())
    assert max(len(line) for line in out.getvalue().splitlines()) <= 80
