"""A damaged image inside a training split is found before training starts: named, or skipped when asked."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))

from engine_testdata import tiny_config, write_synthetic

from instseg.engine.checkpoint import load_checkpoint
from instseg.engine.launch import train_from_config


def test_truncated_training_image_is_named_up_front_or_skipped(tmp_path: Path) -> None:
    data = write_synthetic(tmp_path / "data", num_train=4, num_val=2)
    victim = sorted((data / "images").glob("*.png"))[0]
    victim.write_bytes(victim.read_bytes()[:-40])  # cut off the end: pixels and the IEND chunk
    cfg = tiny_config(data, max_iters=2, eval_period=0, checkpoint_period=0, accumulate=1)
    with pytest.raises(ValueError, match=rf"{victim.name}: truncated PNG"):
        train_from_config(cfg, tmp_path / "strict")
    assert not (tmp_path / "strict" / "last.pt").exists()  # nothing trained before the fault was found
    cfg.data.skip_invalid = True
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with pytest.warns(UserWarning, match="truncated PNG"):
            train_from_config(cfg, tmp_path / "lenient")
    finally:
        torch.set_num_threads(threads)
    assert load_checkpoint(tmp_path / "lenient" / "last.pt")["step"] == 2
