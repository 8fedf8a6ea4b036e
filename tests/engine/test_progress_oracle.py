"""Training progress output by value: speed and ETA from a fixed clock, the plain line format off a terminal,
nothing from disabled ranks, and a live bar on a terminal."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from instseg.engine import progress as progress_module
from instseg.engine.progress import TrainProgress


class _Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _plain(width: int = 60) -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=False, width=width), out


def test_speed_and_eta_from_a_fixed_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = _Clock(100.0)
    monkeypatch.setattr(progress_module.time, "perf_counter", clock)
    console, out = _plain()
    with TrainProgress(total=130, start=10, console=console) as p:
        assert p.speed(10) == (0.0, float("inf"))  # nothing done yet: no rate, no ETA (and no division by zero)
        clock.now = 104.0
        assert p.speed(18) == pytest.approx((2.0, 56.0))  # 8 steps in 4 s; 112 steps left
        p.update(18, 0.123456, 0.002, log=True)
        p.update(19, 0.5, 0.002, log=False)  # not a log step: no line
        clock.now = 100.0
        p.update(10, 1.0, 0.1, log=True)
    lines = out.getvalue().splitlines()
    assert lines == [
        "step 18/130  loss 0.1235  lr 2.00e-03  2.00 it/s  eta 0.9 min",
        "step 10/130  loss 1.0000  lr 1.00e-01  0.00 it/s  eta ?",
    ]


def test_disabled_shows_nothing_and_messages_are_not_markup(monkeypatch: pytest.MonkeyPatch) -> None:
    console, out = _plain()
    with TrainProgress(10, 0, enabled=False, console=console) as p:
        p.update(1, 0.5, 0.1, log=True)
        p.print("hidden")
    assert out.getvalue() == ""
    with TrainProgress(10, 0, console=console) as p:
        p.print("best [segm/AP] 0.5 -> /runs/a_b/best.pt")
    assert out.getvalue() == "best [segm/AP] 0.5 -> /runs/a_b/best.pt\n"


def test_a_terminal_gets_a_live_bar_that_stops() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=100)
    p = TrainProgress(4, 1, console=console)
    assert p.live
    with p:
        assert p._progress is not None
        task = p._progress.tasks[0]
        assert (task.total, task.completed) == (4, 1)
        p.update(3, 0.25, 0.01, log=True)
        assert task.completed == 3 and "loss 0.2500" in task.fields["info"]
    assert p._progress is None and "3/4" in out.getvalue()
    assert not TrainProgress(4, 0, console=_plain()[0]).live
