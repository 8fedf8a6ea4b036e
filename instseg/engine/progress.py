"""Training progress on rank 0: a rich progress bar on a terminal, plain log lines elsewhere (CI, files)."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console


class TrainProgress:
    """Shows step, loss, learning rate, iterations per second and ETA.

    On a terminal a live bar is redrawn every step; otherwise (not a TTY, e.g. CI or ``> log.txt``) one line is
    printed per ``log``. ``enabled=False`` (ranks other than 0) shows nothing.
    """

    def __init__(self, total: int, start: int, enabled: bool = True, console: Console | None = None) -> None:
        self.total = total
        self.start = start
        self.enabled = enabled
        self.console = console or Console(stderr=True)
        self.live = enabled and self.console.is_terminal
        self._progress: Any = None
        self._task: Any = None
        self._t0 = time.perf_counter()

    def __enter__(self) -> TrainProgress:
        self._t0 = time.perf_counter()
        if self.live:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._progress = Progress(
                TextColumn("[bold]train"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[info]}"),
                TimeRemainingColumn(),
                console=self.console,
                transient=False,
            )
            self._progress.start()
            self._task = self._progress.add_task("train", total=self.total, completed=self.start, info="")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def speed(self, step: int) -> tuple[float, float]:
        """Steps per second since this run started and the estimated seconds left."""
        elapsed = max(time.perf_counter() - self._t0, 1e-9)
        rate = (step - self.start) / elapsed
        eta = (self.total - step) / rate if rate > 0 else float("inf")
        return rate, eta

    def update(self, step: int, loss: float, lr: float, log: bool) -> None:
        """After optimiser step ``step``: advance the bar; print a line on log steps when there is no bar."""
        if not self.enabled:
            return
        rate, eta = self.speed(step)
        info = f"loss {loss:.4f}  lr {lr:.2e}  {rate:.2f} it/s"
        if self._progress is not None:
            self._progress.update(self._task, completed=step, info=info)
        elif log:
            eta_text = f"{eta / 60:.1f} min" if eta != float("inf") else "?"
            self.console.print(f"step {step}/{self.total}  {info}  eta {eta_text}", highlight=False, soft_wrap=True)

    def print(self, message: str) -> None:
        """A message above the bar (evaluation results, checkpoint saves)."""
        if self.enabled:
            self.console.print(message, highlight=False, soft_wrap=True, markup=False)
