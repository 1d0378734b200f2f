"""The warehouse's bookkeeping, read in one place: the offsets ledger, load batches, summary
refreshes and the lineage of a batch's files.

The loader writes `offsets_ledger` and `load_batch` rows in each batch's own transaction, and the
batch id as that transaction's DuckLake commit message; the summarizer writes `summary_refresh`
rows with the marts they refreshed. So these tables say what is durable: the loader seeks to its
ledger on assignment, the summarizer refreshes the batches it has not summarized yet, and
`headrace lag`, the metrics and the reconciliation read the same answers.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from headrace.lake.warehouse import LAKE

# Load batches whose days the marts do not cover yet.
UNSUMMARIZED = "FROM load_batch WHERE batch_id NOT IN (SELECT batch_id FROM summary_refresh)"
UNSUMMARIZED_COUNT_SQL = f"SELECT count(*) {UNSUMMARIZED}"


def ledger_offsets(con: duckdb.DuckDBPyConnection, group: str, topic: str) -> dict[int, int]:
    """The loader group's next offset per partition of `topic`, as its offsets ledger holds it."""
    rows = con.execute(
        "SELECT partition, max(next_offset) FROM offsets_ledger "
        "WHERE consumer_group = ? AND topic = ? GROUP BY partition",
        [group, topic],
    ).fetchall()
    return {int(p): int(o) for p, o in rows}


def unsummarized(con: duckdb.DuckDBPyConnection) -> list[tuple[str, list[int]]]:
    """Each unsummarized load batch and the days (yyyymmdd) its fact rows touched."""
    rows = con.execute(f"SELECT batch_id, days {UNSUMMARIZED}").fetchall()
    return [(str(b), [int(d) for d in days]) for b, days in rows]


def unsummarized_count(con: duckdb.DuckDBPyConnection) -> int:
    row = con.execute(UNSUMMARIZED_COUNT_SQL).fetchone()
    return int(row[0]) if row else 0


@dataclass(frozen=True)
class BatchFile:
    path: str  # <table>/<path in the table's folder of the clean zone>
    size: int  # bytes


def batch_files(con: duckdb.DuckDBPyConnection, batch_id: str) -> list[BatchFile]:
    """The clean-zone files of the snapshot committed with `batch_id`, by path."""
    meta = f"__ducklake_metadata_{LAKE}"
    rows = con.execute(
        f"""SELECT t.table_name || '/' || df.path, df.file_size_bytes
            FROM {meta}.ducklake_data_file df
            JOIN {meta}.ducklake_table t USING (table_id)
            JOIN {meta}.ducklake_snapshot_changes c ON df.begin_snapshot = c.snapshot_id
            WHERE c.commit_message = ? AND t.end_snapshot IS NULL ORDER BY 1""",
        [batch_id],
    ).fetchall()
    return [BatchFile(str(path), int(size or 0)) for path, size in rows]
