"""A real DuckLake warehouse in a temp folder, filled by synthetic batches (no broker needed)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from headrace.audit.reconciliation import Reconciliation
from headrace.dev import sample_warehouse
from headrace.lake import warehouse
from headrace.runtime.settings import CommonSettings
from services.summarizer.core import refresh_pending
from services.summarizer.publisher import reconciliation_table

VENV_BIN = Path(__file__).resolve().parents[2] / ".venv" / "bin"
DAY0 = datetime(2026, 10, 1, tzinfo=UTC)


def reconciliation_row(events_in: int | None, fact_rows: int, error_zone: int) -> pa.Table:
    """A snapshot's `reconciliation` table for these sides (no duplicates)."""
    seen = Reconciliation(
        events_in=events_in,
        fact_rows=fact_rows,
        duplicates=0,
        error_zone=error_zone,
        observed_at=datetime.now(UTC),
        snapshot_id=0,
        errors_by_reason={},
        unsummarized_batches=0,
    )
    return reconciliation_table(seen)


@dataclass
class Lake:
    settings: CommonSettings
    con: duckdb.DuckDBPyConnection
    home: Path

    @property
    def env(self) -> dict[str, str]:
        """Environment for a `headrace` subprocess that opens this warehouse."""
        return {
            **os.environ,
            "HEADRACE_BUCKET_URL": self.settings.bucket_url,
            "HEADRACE_CATALOG_URL": self.settings.catalog_url,
        }

    def load(self, batch_id: str, rows: int, first_id: int, first_day: int, days: int) -> None:
        """A batch of `rows` events spread over `days` days from DAY0 + first_day."""
        start = DAY0 + timedelta(days=first_day)
        batch = sample_warehouse.Batch(
            batch_id,
            rows,
            first_id,
            start,
            start + timedelta(days=days),
            accounts=200,
            seed=first_id,
        )
        warehouse.in_transaction(self.con, lambda: sample_warehouse.load(self.con, batch))

    def refresh(self, hourly_days: int = 7) -> tuple[int, list[int]]:
        return warehouse.in_transaction(self.con, lambda: refresh_pending(self.con, hourly_days))


@pytest.fixture
def lake(tmp_path: Path) -> Iterator[Lake]:
    settings = CommonSettings(
        bucket_url=str(tmp_path / "bucket"), catalog_url=str(tmp_path / "catalog.sqlite")
    )
    con = warehouse.connect(settings)
    warehouse.migrate(con)
    yield Lake(settings, con, tmp_path)
    con.close()
