"""The database pool as the metrics see it."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine

from tests.prometheus import samples, value
from todo_api.metrics import Metrics


def test_the_pool_gauges_follow_checkouts_and_overflow(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'pool.db'}", pool_size=1, max_overflow=2)
    metrics = Metrics()
    metrics.watch_pool(engine)

    def scraped(name: str) -> float:
        return value(samples(metrics.exposition().decode()), name)

    first = engine.connect()
    first.exec_driver_sql("SELECT 1")
    assert scraped("todo_api_db_pool_checked_out") == 1
    assert scraped("todo_api_db_pool_overflow") == 0
    second = engine.connect()
    second.exec_driver_sql("SELECT 1")
    assert scraped("todo_api_db_pool_checked_out") == 2
    assert scraped("todo_api_db_pool_overflow") == 1
    second.close()
    first.close()
    assert scraped("todo_api_db_pool_checked_out") == 0
    engine.dispose()
