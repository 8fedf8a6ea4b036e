"""Distributed training: ``torchrun --nproc_per_node=2 -m instseg train`` on CPU (gloo) with the tiny model."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from engine_testdata import ENGINE_TESTS_DIR, write_synthetic

from instseg.engine.checkpoint import load_checkpoint

REPO = ENGINE_TESTS_DIR.parents[1]


@pytest.mark.slow
def test_two_process_cpu_training_finishes_and_writes_last_pt(tmp_path: Path) -> None:
    data = write_synthetic(tmp_path / "data", num_train=8, num_val=3)
    config = tmp_path / "tiny.py"
    config.write_text("from engine_testdata import tiny_config\n\nconfig = tiny_config(max_iters=4, eval_period=2)\n")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ENGINE_TESTS_DIR), str(REPO), os.environ.get("PYTHONPATH", "")]),
        "OMP_NUM_THREADS": "1",
    }
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        "-m", "instseg", "train", "--config", str(config), "--data", str(data), "--out", str(tmp_path / "run"),
    ]  # fmt: skip
    start = time.perf_counter()
    done = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=180)
    elapsed = time.perf_counter() - start
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    state = load_checkpoint(tmp_path / "run" / "last.pt")
    assert state["step"] == 4 and len(state["rng"]) == 2  # one RNG state per rank
    assert state["data"] == {"epoch": 1, "batches_done": 4}  # 8 images / 2 ranks / batch 1 = 4 batches per epoch
    assert "segm/AP" in state["metrics"]  # evaluation gathered from both ranks
    assert (tmp_path / "run" / "best.pt").is_file() and (tmp_path / "run" / "metrics.csv").is_file()
    assert done.stderr.count("training tiny_fg_test") == 1  # rank 0 alone reports
    assert elapsed < 120, f"2-process training took {elapsed:.0f} s"
