"""How `headrace stack` shows itself: the table of components, the replay command, the wait."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from headrace.cli.report_view import current_counts
from headrace.dev.stack import Stack
from headrace.runtime import settings
from headrace.runtime.errors import OperatorError
from headrace.runtime.settings import CommonSettings


def render(console: Console, stack: Stack) -> None:
    table = Table("component", "runs as", "address", "state", title=f"stack in {stack.home}")
    for row in stack.rows():
        table.add_row(row.component, row.local, row.address, row.state)
    console.print(table)


def replay_hint(console: Console, stack: Stack) -> None:
    headrace = Path(sys.executable).parent / "headrace"
    console.print(
        "\nReplay a file through the producer (`headrace generate sample.jsonl` makes one):\n"
        f'  eval "$({headrace} stack env)" && {headrace} replay sample.jsonl',
        highlight=False,
        soft_wrap=True,
    )


def wait_settled(console: Console, stack: Stack, timeout: float) -> None:
    """Until the reconciliation has placed every raw event; one line if it does not in time."""
    os.environ.update(stack.client_env())  # libpq reads PGPASSWORD from the environment
    common = settings.load(CommonSettings)
    deadline = time.monotonic() + timeout
    with console.status("waiting for the pipeline to place every event") as status:
        while time.monotonic() < deadline:
            counts, _ = current_counts(common)
            status.update(f"placed {counts.placed or 0:,} of {counts.events_in or 0:,} events")
            if counts.events_in and counts.settled:
                console.print(f"settled: {counts.placed:,} of {counts.events_in:,} events placed")
                return
            time.sleep(1)
    raise OperatorError(
        f"the pipeline did not settle within {timeout:.0f}s; see the logs in {stack.home}/logs"
    )
