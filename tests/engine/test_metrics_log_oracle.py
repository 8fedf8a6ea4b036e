"""``metrics.csv`` by value: the header is the union of the rows' keys in first-seen order, values survive a
resume as floats, ``series`` pairs each step with its own finite value, and nothing is plotted from nothing."""

from __future__ import annotations

import csv
import math
from pathlib import Path

from instseg.engine.metrics_log import MetricsLog


def test_header_rows_series_and_resume(tmp_path: Path) -> None:
    log = MetricsLog(tmp_path, tensorboard=False)
    log.log(1, {"loss": 0.5, "lr": 0.1})
    log.log(2, {"loss": math.nan, "lr": 0.2})
    log.log(2, {"segm/AP": 0.25})
    log.log(3, {"loss": 0.25, "lr": 0.3})
    with open(tmp_path / "metrics.csv", newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        rows = list(reader)
    assert header == ["step", "loss", "lr", "segm/AP"]
    assert rows == [["1", "0.5", "0.1", ""], ["2", "nan", "0.2", ""], ["2", "", "", "0.25"], ["3", "0.25", "0.3", ""]]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.csv"]  # no temporary file left
    assert log.series("loss") == ([1, 3], [0.5, 0.25])  # the NaN row is left out, steps stay with their values
    assert log.series("lr") == ([1, 2, 3], [0.1, 0.2, 0.3])
    assert log.series("segm/AP") == ([2], [0.25]) and log.series("missing") == ([], [])
    again = MetricsLog(tmp_path, tensorboard=False)
    again.resume(2)
    assert [r["step"] for r in again.rows] == [1, 2, 2]
    assert again.rows[0] == {"step": 1, "loss": 0.5, "lr": 0.1} and again.rows[2] == {"step": 2, "segm/AP": 0.25}
    assert again.plot(tmp_path / "c.png") == tmp_path / "c.png" and (tmp_path / "c.png").stat().st_size > 0


def test_no_rows_or_no_plottable_columns_plot_nothing(tmp_path: Path) -> None:
    empty = MetricsLog(tmp_path / "empty", tensorboard=False)
    assert empty.plot() is None and not (tmp_path / "empty").exists()
    empty.resume(10)  # no csv yet: nothing to reload
    assert empty.rows == []
    other = MetricsLog(tmp_path / "other", tensorboard=False)
    other.log(1, {"images": 4.0})
    assert other.plot() is None and not (tmp_path / "other" / "curves.png").exists()
    other.log(2, {"loss_a": 0.5})
    assert other.plot() == tmp_path / "other" / "curves.png"
