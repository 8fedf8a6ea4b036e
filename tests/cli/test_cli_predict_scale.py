"""``instseg predict`` on a video (tracked; MP4, per-frame JSONL, VIS json) and the checks of ``--ray``."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from skimage.draw import disk
from typer.testing import CliRunner

from instseg.cli.main import app

av = pytest.importorskip("av", reason="PyAV (the 'video' extra) is not installed")


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 12-frame 96x128 clip of two grey nuclei-like discs drifting to the right."""
    path = tmp_path_factory.mktemp("clip") / "cells.mp4"
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=Fraction(10))
        stream.width, stream.height, stream.pix_fmt = 128, 96, "yuv420p"
        for f in range(12):
            frame = np.full((96, 128, 3), 10, dtype=np.uint8)
            for cy, cx in ((30, 20 + 2 * f), (64, 60 + 2 * f)):
                rr, cc = disk((cy, cx), 9, shape=(96, 128))
                frame[rr, cc] = 200
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def test_predict_video(clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["predict", str(clip), "--out", str(out), "--every", "2"])
    assert result.exit_code == 0, result.output
    assert "6 of 12 frames" in result.output
    frames = [json.loads(line) for line in (out / "cells_frames.jsonl").read_text().splitlines()]
    assert [f["frame"] for f in frames] == list(range(0, 12, 2))
    vis = json.loads((out / "cells_vis.json").read_text())
    assert all(len(v["segmentations"]) == 6 and v["video_id"] == 1 for v in vis)
    assert (out / "cells_tracks.mp4").stat().st_size > 0


def test_bad_scale_options(clip: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["predict", str(clip), "--out", str(tmp_path / "a"), "--every", "0"])
    assert result.exit_code == 2 and "--every 0" in result.output
    result = runner.invoke(
        app, ["predict", str(clip.parent), "--out", str(tmp_path / "b"), "--ray", "--concurrency", "0"]
    )
    assert result.exit_code == 2 and "--concurrency 0" in result.output
