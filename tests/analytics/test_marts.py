"""Marts refreshed day by day equal a recomputation from the fact table, late events included."""

from __future__ import annotations

from tests.analytics.conftest import Lake
from tests.analytics.recompute import mart_mismatches

ALL_EQUAL = {
    "transaction_daily_summary": 0,
    "daily_status_account_summary": 0,
    "hourly_volume": 0,
    "data_freshness": 0,
    "calendar_view": 0,
}


def refreshed_at(lake: Lake) -> dict[int, object]:
    rows = lake.con.execute("SELECT time_id, refreshed_at FROM data_freshness").fetchall()
    return dict(rows)


def test_marts_equal_recomputation_after_late_events_for_old_days(lake: Lake) -> None:
    lake.load("b1", 20_000, first_id=1, first_day=0, days=10)
    batches, days = lake.refresh()
    assert batches == 1 and len(days) == 10
    assert mart_mismatches(lake.con) == ALL_EQUAL
    before = refreshed_at(lake)

    lake.load("b2", 3_000, first_id=100_000, first_day=2, days=2)  # late: days 2 and 3 again
    lake.load("b3", 2_000, first_id=200_000, first_day=10, days=1)  # and one new day
    batches, days = lake.refresh()

    assert batches == 2 and len(days) == 3
    assert mart_mismatches(lake.con) == ALL_EQUAL
    after = refreshed_at(lake)
    touched = {d for d in after if after[d] != before.get(d)}
    assert touched == set(days)  # only the days the loads touched were refreshed
    assert lake.refresh() == (0, [])


def test_hourly_volume_keeps_the_newest_days_only(lake: Lake) -> None:
    lake.load("b1", 5_000, first_id=1, first_day=0, days=10)
    lake.refresh(hourly_days=3)
    days = lake.con.execute("SELECT DISTINCT time_id FROM hourly_volume ORDER BY 1").fetchall()
    assert [d for (d,) in days] == [20261008, 20261009, 20261010]
    assert mart_mismatches(lake.con, hourly_days=3)["hourly_volume"] == 0

    lake.load("b2", 1_000, first_id=10_000, first_day=11, days=1)  # the window moves on
    lake.load("b3", 500, first_id=20_000, first_day=0, days=1)  # a late day outside it
    lake.refresh(hourly_days=3)
    days = lake.con.execute("SELECT DISTINCT time_id FROM hourly_volume ORDER BY 1").fetchall()
    assert [d for (d,) in days] == [20261010, 20261012]  # no data on the 11th
    assert mart_mismatches(lake.con, hourly_days=3) == ALL_EQUAL


def test_views_read_one_row_per_dimension_key(lake: Lake) -> None:
    lake.load("b1", 2_000, first_id=1, first_day=0, days=3)
    # Two loader replicas inserting the same new keys at once leave duplicate dimension rows.
    lake.con.execute("INSERT INTO time_dimension SELECT * FROM time_dimension")
    lake.con.execute("INSERT INTO account_dimension SELECT * FROM account_dimension")
    lake.refresh()
    view, fact = lake.con.execute(
        "SELECT (SELECT count(*) FROM transaction_view), (SELECT count(*) FROM transaction_fact)"
    ).fetchone() or (0, 0)
    assert view == fact == 2_000
    assert mart_mismatches(lake.con) == ALL_EQUAL
    columns = {r[0] for r in lake.con.execute("DESCRIBE transaction_view").fetchall()}
    assert not columns & {"time_id", "account_id"}
    assert {"event_date", "year", "quarter", "customer_region", "account_number"} <= columns
