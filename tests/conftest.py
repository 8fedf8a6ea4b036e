"""Shared test fixtures: where the real data sets are (``shared/data`` beside the repo), skipping when absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_DATA_ENV = "INSTSEG_SHARED_DATA"


def shared_data_dir() -> Path | None:
    """The ``shared/data`` folder beside the repository (or ``$INSTSEG_SHARED_DATA``), or None when absent."""
    env = os.environ.get(SHARED_DATA_ENV)
    path = Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"
    return path if path.is_dir() else None


def _data_set(name: str) -> Path:
    """``shared/data/<name>``, or skip the test saying what is missing."""
    root = shared_data_dir()
    if root is None:
        pytest.skip(f"shared data folder not found (set {SHARED_DATA_ENV} or place shared/data beside the repo)")
    path = root / name
    if not (path / "annotations").is_dir():
        pytest.skip(f"data set {name} not found in {root}")
    return path


@pytest.fixture(scope="session")
def dsb2018_dir() -> Path:
    """The dsb2018 nuclei data set folder (images/ + annotations/instances_{train,val}.json)."""
    return _data_set("dsb2018")


@pytest.fixture(scope="session")
def coco128_dir() -> Path:
    """The coco128seg data set folder (images/ + annotations/instances_{train,val}.json)."""
    return _data_set("coco128seg")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip tests marked ``shared_data`` when the shared data folder is absent (fresh clones, CI without data)."""
    if shared_data_dir() is not None:
        return
    skip = pytest.mark.skip(reason=f"shared data folder not found (set {SHARED_DATA_ENV})")
    for item in items:
        if "shared_data" in item.keywords:
            item.add_marker(skip)
