"""metrics.csv (union of columns, resume truncation) and curves.png."""

from __future__ import annotations

import csv
from pathlib import Path

from instseg.engine.metrics_log import MetricsLog


def test_csv_rows_resume_and_plot(tmp_path: Path) -> None:
    log = MetricsLog(tmp_path, tensorboard=False)
    for step in (10, 20, 30):
        log.log(step, {"loss": 1.0 / step, "loss_mask": 0.5 / step, "lr": 0.01})
    log.log(20, {"segm/AP": 0.25})
    with open(tmp_path / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["step"] for r in rows] == ["10", "20", "30", "20"]
    assert rows[0]["segm/AP"] == "" and rows[3]["segm/AP"] == "0.25"
    png = log.plot()
    assert png is not None and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    resumed = MetricsLog(tmp_path, tensorboard=False)
    resumed.resume(20)
    assert [r["step"] for r in resumed.rows] == [10, 20, 20]  # step 30 will be redone
    resumed.close()


def test_disabled_log_writes_nothing(tmp_path: Path) -> None:
    log = MetricsLog(tmp_path / "run", enabled=False)
    log.log(1, {"loss": 1.0})
    assert log.plot() is None and not (tmp_path / "run").exists()
