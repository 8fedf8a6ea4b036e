"""Run-folder metrics: ``metrics.csv`` (one row per logged step), TensorBoard when installed, ``curves.png``."""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path
from typing import Any

# Evaluation figures drawn in curves.png when present (all of them are in metrics.csv).
PLOTTED_METRICS = ("segm/AP", "segm/AP50", "bbox/AP", "match/F1@0.5", "match/PQ@0.5")


class MetricsLog:
    """Collects ``{name: value}`` per step; rewrites ``metrics.csv`` on each call so it is always complete.

    Rows differ in their columns (training rows have losses and lr, evaluation rows have ``segm/AP`` ...); the
    CSV header is the union, in first-seen order, with empty cells where a row has no value. Disabled
    (``enabled=False``, every rank but 0) it records nothing.
    """

    def __init__(self, out_dir: str | Path, enabled: bool = True, tensorboard: bool = True) -> None:
        self.out_dir = Path(out_dir)
        self.enabled = enabled
        self.csv_path = self.out_dir / "metrics.csv"
        self.rows: list[dict[str, Any]] = []
        self._writer: Any = None
        if enabled and tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # tensorboard is optional; the CSV and the PNG always exist
                SummaryWriter = None  # type: ignore[assignment,misc]
            if SummaryWriter is not None:
                self._writer = SummaryWriter(log_dir=str(self.out_dir / "tensorboard"))

    def resume(self, step: int) -> None:
        """Reload the rows of an interrupted run up to ``step`` (later rows belong to steps that will be redone)."""
        if not self.enabled or not self.csv_path.is_file():
            return
        with open(self.csv_path, newline="") as f:
            for row in csv.DictReader(f):
                values = {k: float(v) for k, v in row.items() if k != "step" and v not in ("", None)}
                if int(float(row["step"])) <= step:
                    self.rows.append({"step": int(float(row["step"])), **values})

    def log(self, step: int, values: dict[str, float]) -> None:
        """Record the values of one step (training losses, lr, speed, or evaluation figures)."""
        if not self.enabled:
            return
        self.rows.append({"step": int(step), **{k: float(v) for k, v in values.items()}})
        self._write_csv()
        if self._writer is not None:
            for key, value in values.items():
                self._writer.add_scalar(key, float(value), int(step))
            self._writer.flush()

    def _write_csv(self) -> None:
        columns: dict[str, None] = {"step": None}
        for row in self.rows:
            columns.update(dict.fromkeys(row))
        self.out_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.csv_path.with_name(f".{self.csv_path.name}.tmp-{os.getpid()}")
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(columns), restval="")
            writer.writeheader()
            writer.writerows(self.rows)
        os.replace(tmp, self.csv_path)

    def series(self, key: str) -> tuple[list[int], list[float]]:
        """Steps and finite values of one column."""
        points = [(r["step"], r[key]) for r in self.rows if key in r and math.isfinite(r[key])]
        return [p[0] for p in points], [p[1] for p in points]

    def plot(self, path: str | Path | None = None) -> Path | None:
        """Draw losses, learning rate and evaluation figures against steps into a PNG (``curves.png``)."""
        if not self.enabled or not self.rows:
            return None
        # The object-oriented API with the Agg canvas: no pyplot global state, no display needed.
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        keys = list(dict.fromkeys(k for row in self.rows for k in row))
        panels = [
            ("loss", [k for k in keys if k.startswith("loss")]),
            ("learning rate", [k for k in keys if k == "lr"]),
            ("evaluation", [k for k in PLOTTED_METRICS if k in keys]),
        ]
        panels = [(title, ks) for title, ks in panels if ks]
        if not panels:
            return None
        fig = Figure(figsize=(5.0 * len(panels), 4.0), dpi=100)
        FigureCanvasAgg(fig)
        for i, (title, panel_keys) in enumerate(panels):
            ax = fig.add_subplot(1, len(panels), i + 1)
            for key in panel_keys:
                steps, values = self.series(key)
                ax.plot(steps, values, label=key, marker="o" if title == "evaluation" else None, linewidth=1.2)
            ax.set_title(title)
            ax.set_xlabel("step")
            if title == "loss" and all(v > 0 for k in panel_keys for v in self.series(k)[1]):
                ax.set_yscale("log")
            ax.grid(True, alpha=0.3)
            ax.legend(fontsize=7)
        fig.tight_layout()
        out = Path(path) if path is not None else self.out_dir / "curves.png"
        fig.savefig(out)
        return out

    def close(self) -> None:
        """Flush and close TensorBoard (the CSV is already on disk)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
