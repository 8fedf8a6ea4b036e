"""The run summary and the shared-data switch of ``tests/conftest.py``, run on a throw-away test folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

CONFTEST = Path(__file__).resolve().parent / "conftest.py"
TESTS = """
import pytest

def test_plain():
    assert True

@pytest.mark.shared_data
def test_needs_data():
    assert True

def test_uses_fixture(dsb2018_dir):
    assert dsb2018_dir.is_dir()

def test_optional():
    pytest.skip("optional thing missing")

def test_also_optional():
    pytest.skip("optional thing missing")
"""


def _run(tmp_path: Path, data: Path, require: bool) -> tuple[int, str]:
    (tmp_path / "conftest.py").write_text(CONFTEST.read_text())
    (tmp_path / "test_sample.py").write_text(TESTS)
    (tmp_path / "pytest.ini").write_text("[pytest]\nmarkers =\n    shared_data: real data\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INSTSEG_", "PYTEST_"))}
    env.update(INSTSEG_SHARED_DATA=str(data), COLUMNS="60")
    if require:
        env["INSTSEG_REQUIRE_SHARED_DATA"] = "1"
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist", "-p", "no:randomly"]
    done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    return done.returncode, done.stdout


def _summary(out: str) -> str:
    lines = [line for line in out.splitlines() if line.startswith("instseg tests:")]
    assert len(lines) == 1, out
    return lines[0]


def test_missing_data_is_skipped_and_counted(tmp_path: Path) -> None:
    rc, out = _run(tmp_path, tmp_path / "absent", require=False)
    assert rc == 0, out
    line = _summary(out)
    assert line.startswith("instseg tests: 1 passed, 4 skipped (")
    assert "optional thing missing: 2" in line and "shared data folder not found" in line
    assert line.endswith("shared_data tests run: 0 of 2")  # the marked test and the one using a data fixture


def test_required_data_missing_fails(tmp_path: Path) -> None:
    rc, out = _run(tmp_path, tmp_path / "absent", require=True)
    assert rc == 1, out
    line = _summary(out)
    assert "2 error" in line and "2 skipped (optional thing missing: 2)" in line
    assert line.endswith("shared_data tests run: 0 of 2 (required)")
    assert "INSTSEG_REQUIRE_SHARED_DATA is set" in out


@pytest.mark.parametrize("require", [False, True])
def test_present_data_runs_and_says_so(tmp_path: Path, require: bool) -> None:
    data = tmp_path / "data"
    (data / "dsb2018" / "annotations").mkdir(parents=True)
    (tmp_path / "run").mkdir()
    rc, out = _run(tmp_path / "run", data, require)
    assert rc == 0, out
    line = _summary(out)
    assert line.startswith("instseg tests: 3 passed, 2 skipped (optional thing missing: 2)")
    assert line.endswith("shared_data tests run: 2 of 2" + (" (required)" if require else ""))
