"""2-process DDP training (torchrun, gloo) checked by value: the weights equal a 1-process run with the same global
batch, and the figures gathered from both ranks equal a 1-process evaluation of the same checkpoint."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from engine_testdata import ENGINE_TESTS_DIR, write_synthetic

from instseg.engine.checkpoint import load_checkpoint
from instseg.engine.evaluate import evaluate_checkpoint
from instseg.engine.launch import train_from_config

REPO = ENGINE_TESTS_DIR.parents[1]


@pytest.mark.slow
def test_two_ranks_equal_one_process_with_the_same_global_batch(tmp_path: Path) -> None:
    data = write_synthetic(tmp_path / "data", num_train=8, num_val=5)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ENGINE_TESTS_DIR), str(REPO), os.environ.get("PYTHONPATH", "")]),
        "OMP_NUM_THREADS": "1",
    }
    config = tmp_path / "ddp.py"
    # 1 image per rank and step: a global batch of 2
    config.write_text("from pixel_oracle_model import ddp_config\n\nconfig = ddp_config(1)\n")
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        "-m", "instseg", "train", "--config", str(config), "--data", str(data), "--out", str(tmp_path / "ddp"),
    ]  # fmt: skip
    done = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    sys.path.insert(0, str(ENGINE_TESTS_DIR))
    try:
        from pixel_oracle_model import ddp_config  # also registers the model for the in-process runs

        torch.set_num_threads(1)
        reference = train_from_config(ddp_config(2, str(data)), tmp_path / "one")
    finally:
        sys.path.remove(str(ENGINE_TESTS_DIR))
    ddp, one = load_checkpoint(tmp_path / "ddp" / "last.pt"), load_checkpoint(tmp_path / "one" / "last.pt")
    assert ddp["step"] == one["step"] == 3
    for key, value in one["model"].items():
        torch.testing.assert_close(ddp["model"][key], value, rtol=1e-5, atol=1e-6, msg=key)
    # the figures rank 0 gathered from both ranks' shards == one process evaluating the same weights on all images
    assert ddp["metrics"] and set(ddp["metrics"]) == set(reference)
    alone = evaluate_checkpoint(
        tmp_path / "ddp" / "last.pt",
        data / "annotations" / "instances_val.json",
        score_thr=0.0,
    )
    for key in ("segm/AP", "bbox/AP", "match/F1@0.5", "match/recall@0.5", "match/precision@0.5"):
        assert ddp["metrics"][key] == pytest.approx(alone[key], abs=1e-12), key
        assert ddp["metrics"][key] == pytest.approx(reference[key], abs=1e-6), key
    assert ddp["metrics"]["match/recall@0.5"] > 0.0  # the figures are informative: objects were found
