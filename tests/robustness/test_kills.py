"""Kills at random moments: during training (``--resume`` then reproduces the uninterrupted run exactly) and
during checkpoint writes (no truncated checkpoint, no temporary file left once the next save runs)."""

from __future__ import annotations

import os
import random
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch

ENGINE_TESTS = Path(__file__).resolve().parents[1] / "engine"
sys.path.insert(0, str(ENGINE_TESTS))

from engine_testdata import tiny_config, write_synthetic  # noqa: E402

from instseg.engine.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from instseg.engine.launch import train_from_config  # noqa: E402

KILL_SEEDS = (11,)  # each gives one random moment after the first checkpoint appears (more: slower suite)
TIMEOUT = 120


def _env() -> dict[str, str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(ENGINE_TESTS), *sys.path])}
    env.pop("INSTSEG_DEBUG", None)
    return env


def _same(a: Any, b: Any, where: str) -> None:
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b), f"{where} differs"
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), f"{where}: keys differ"
        for key in a:
            _same(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), f"{where}: lengths differ"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _same(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """Synthetic data, a config file for the CLI, and the uninterrupted reference run (in-process)."""
    root = tmp_path_factory.mktemp("kills")
    data = write_synthetic(root / "data")
    config = root / "tiny_kill.py"
    config.write_text(
        "from engine_testdata import tiny_config\n\n"
        "config = tiny_config(eval_period=0, checkpoint_period=1, max_iters=8)\n"
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.random.fork_rng():
            train_from_config(tiny_config(data, eval_period=0, checkpoint_period=1, max_iters=8), root / "reference")
    finally:
        torch.set_num_threads(threads)
    return data, config, root / "reference"


def _train(config: Path, data: Path, out: Path, resume: bool = False) -> subprocess.Popen[bytes]:
    command = [
        sys.executable,
        "-m",
        "instseg",
        "train",
        "--config",
        str(config),
        "--data",
        str(data),
        "--out",
        str(out),
    ]
    return subprocess.Popen(
        [*command, *(["--resume"] if resume else [])], env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )


@pytest.mark.parametrize("seed", KILL_SEEDS)
def test_resume_after_a_kill_reproduces_the_uninterrupted_run(
    setup: tuple[Path, Path, Path], tmp_path: Path, seed: int
) -> None:
    data, config, reference = setup
    run = tmp_path / "run"
    proc = _train(config, data, run)
    start = time.monotonic()
    while not (run / "last.pt").exists() and proc.poll() is None and time.monotonic() - start < TIMEOUT:
        time.sleep(0.02)
    time.sleep(random.Random(seed).uniform(0.0, 0.6))  # a random moment: mid-step, mid-save or after the end
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=TIMEOUT)
    assert (run / "last.pt").exists()
    killed_at = load_checkpoint(run / "last.pt")["step"]  # never a truncated file: it always loads
    resumed = _train(config, data, run, resume=True)
    output = resumed.communicate(timeout=TIMEOUT)[0].decode()
    assert resumed.returncode == 0, output
    a, b = load_checkpoint(reference / "last.pt"), load_checkpoint(run / "last.pt")
    for key in ("step", "model", "ema", "optimizer", "scheduler", "rng", "data"):
        _same(a[key], b[key], f"{key} (killed after step {killed_at})")
    assert not list(run.glob(".*.tmp-*")), "a temporary checkpoint file was left behind"


WRITER = """
import sys, time, torch
from instseg.engine.checkpoint import save_checkpoint
state = {"model": {"w": torch.arange(4_000_000, dtype=torch.float64)}, "config": {}}
print("ready", flush=True)
while True:
    save_checkpoint(state, sys.argv[1])
"""


@pytest.mark.parametrize("delay", [random.Random(5).uniform(0.05, 0.4)])
def test_a_kill_during_a_checkpoint_write_leaves_no_trace(tmp_path: Path, delay: float) -> None:
    target = tmp_path / "last.pt"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(target)], env=_env(), stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=TIMEOUT)
    if target.exists():
        assert load_checkpoint(target)["model"]["w"].numel() == 4_000_000  # whole, never truncated
    old_umask = os.umask(0o022)
    try:
        save_checkpoint({"model": {"w": torch.zeros(3)}, "config": {}}, target)
    finally:
        os.umask(old_umask)
    assert not list(tmp_path.glob(".last.pt.tmp-*")), "the killed writer's temporary file is still there"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
