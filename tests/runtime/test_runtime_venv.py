"""The documented install path: ``pip install ./runtime`` into a fresh venv without torch, then segment a sample
image with an ONNX file exported here (downloads numpy, onnxruntime, scipy, scikit-image from the registry)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from instseg_runtime import OnnxPredictor
from PIL import Image
from runtime_testdata import REPO, RUN_SCRIPT, SAMPLE_IMAGE, export_default


@pytest.mark.slow
def test_fresh_venv_without_torch_runs_the_exported_model(tmp_path: Path) -> None:
    path = export_default(tmp_path)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    source = tmp_path / "runtime"  # pip builds in the source folder: a copy keeps the repository untouched
    shutil.copytree(REPO / "runtime", source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    install = subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            str(REPO / "runtime"),
            "pillow",
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert install.returncode == 0, install.stderr[-3000:]
    probe = subprocess.run(
        [str(python), "-c", "import importlib.util as u; print(u.find_spec('torch') is None)"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert probe.stdout.strip() == "True", "torch must not be installed in the runtime venv"
    done = subprocess.run(
        [str(python), "-c", RUN_SCRIPT, str(path), str(SAMPLE_IMAGE)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    count, area, torch_loaded, _ = done.stdout.split()
    here = OnnxPredictor(path, threads=1)(np.asarray(Image.open(SAMPLE_IMAGE)))
    assert torch_loaded == "False"
    assert int(count) == len(here) > 0 and int(area) == int(here.masks.sum())
