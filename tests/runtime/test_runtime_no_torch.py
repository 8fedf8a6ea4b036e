"""Importing and running ``instseg_runtime`` loads neither torch nor instseg (checked in a fresh interpreter)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
from instseg_runtime import OnnxPredictor
from PIL import Image
from runtime_testdata import RUN_SCRIPT, SAMPLE_IMAGE, export_default


def test_runtime_segments_without_importing_torch(tmp_path: Path) -> None:
    path = export_default(tmp_path)
    done = subprocess.run(
        [sys.executable, "-c", RUN_SCRIPT, str(path), str(SAMPLE_IMAGE)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    count, area, torch_loaded, instseg_loaded = done.stdout.split()
    assert torch_loaded == "False" and instseg_loaded == "False"
    here = OnnxPredictor(path, threads=1)(np.asarray(Image.open(SAMPLE_IMAGE)))
    assert int(count) == len(here) > 0 and int(area) == int(here.masks.sum())
