"""Shared test fixtures: where the real data sets are (``shared/data`` beside the repo), skipping when absent.

With ``INSTSEG_REQUIRE_SHARED_DATA=1`` (set by CI) a missing data set fails its tests instead of skipping them, and
every run ends with one summary line: tests passed/failed, skips grouped by reason, and how many real-data
(``shared_data``) tests ran, so a run that silently lost its data cannot look green.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

SHARED_DATA_ENV = "INSTSEG_SHARED_DATA"
REQUIRE_SHARED_DATA_ENV = "INSTSEG_REQUIRE_SHARED_DATA"


def shared_data_required() -> bool:
    """True when a missing real data set must fail the tests that need it (CI), not skip them."""
    return os.environ.get(REQUIRE_SHARED_DATA_ENV, "").strip().lower() in ("1", "true", "yes")


def _missing(reason: str) -> None:
    """Skip the running test for ``reason``, or fail it when the shared data is required."""
    if shared_data_required():
        pytest.fail(f"{reason} ({REQUIRE_SHARED_DATA_ENV} is set: real-data tests must run)", pytrace=False)
    pytest.skip(reason)


def shared_data_dir() -> Path | None:
    """The ``shared/data`` folder beside the repository (or ``$INSTSEG_SHARED_DATA``), or None when absent."""
    env = os.environ.get(SHARED_DATA_ENV)
    path = Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"
    return path if path.is_dir() else None


def _data_set(name: str) -> Path:
    """``shared/data/<name>``, or skip the test saying what is missing."""
    root = shared_data_dir()
    if root is None:
        _missing(f"shared data folder not found (set {SHARED_DATA_ENV} or place shared/data beside the repo)")
    assert root is not None
    path = root / name
    if not (path / "annotations").is_dir():
        _missing(f"data set {name} not found in {root}")
    return path


@pytest.fixture(scope="session")
def dsb2018_dir() -> Path:
    """The dsb2018 nuclei data set folder (images/ + annotations/instances_{train,val}.json)."""
    return _data_set("dsb2018")


@pytest.fixture(scope="session")
def coco128_dir() -> Path:
    """The coco128seg data set folder (images/ + annotations/instances_{train,val}.json)."""
    return _data_set("coco128seg")


SHARED_DATA_FIXTURES = ("dsb2018_dir", "coco128_dir")


@pytest.fixture(autouse=True)
def _denormals_restored() -> Iterator[None]:
    """Undo the process-wide flush-to-zero that a ``Trainer`` turns on (it speeds up CPU training), so that the
    next test in the same worker sees IEEE floats again (hypothesis refuses to draw floats without subnormals)."""
    yield
    import torch

    torch.set_flush_denormal(False)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test that asks for a real data set fixture ``shared_data``, so the summary counts it."""
    for item in items:
        if any(name in getattr(item, "fixturenames", ()) for name in SHARED_DATA_FIXTURES):
            item.add_marker(pytest.mark.shared_data)


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skip (or, when required, fail) tests marked ``shared_data`` when the shared data folder is absent."""
    if "shared_data" in item.keywords and shared_data_dir() is None:
        _missing(f"shared data folder not found (set {SHARED_DATA_ENV})")


class _RunSummary:
    """Counts test outcomes as reports arrive (also the ones xdist workers send back to the controller)."""

    def __init__(self) -> None:
        self.outcomes: Counter[str] = Counter()
        self.skip_reasons: Counter[str] = Counter()
        self.shared_ran = 0
        self.shared_total = 0

    def add(self, report: pytest.TestReport) -> None:
        """Record one phase report: failures/skips of any phase, passes of the call phase."""
        shared = "shared_data" in report.keywords
        if report.skipped:
            reason = str(report.longrepr[-1]) if isinstance(report.longrepr, tuple) else str(report.longrepr)
            self.outcomes["skipped"] += 1
            self.skip_reasons[reason.removeprefix("Skipped: ")] += 1
            self.shared_total += shared
        elif report.failed:
            self.outcomes["failed" if report.when == "call" else "error"] += 1
            if report.when == "call":
                self.shared_ran += shared
                self.shared_total += shared
            elif report.when == "setup":
                self.shared_total += shared
        elif report.when == "call":
            self.outcomes["passed"] += 1
            self.shared_ran += shared
            self.shared_total += shared

    def line(self) -> str:
        """The one-line summary, e.g. ``instseg tests: 510 passed, 3 skipped (timm missing: 3); shared_data: 12/12``."""
        parts = [f"{self.outcomes[k]} {k}" for k in ("passed", "failed", "error") if self.outcomes[k]]
        text = ", ".join(parts) or "0 passed"
        if self.outcomes["skipped"]:
            reasons = "; ".join(f"{reason}: {n}" for reason, n in self.skip_reasons.most_common())
            text += f", {self.outcomes['skipped']} skipped ({reasons})"
        required = " (required)" if shared_data_required() else ""
        return f"instseg tests: {text}; shared_data tests run: {self.shared_ran} of {self.shared_total}{required}"


_SUMMARY = _RunSummary()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Feed every test report to the run summary."""
    _SUMMARY.add(report)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print the one-line run summary last (on xdist workers there is no terminal summary: only the controller)."""
    terminalreporter.write_line(_SUMMARY.line())
