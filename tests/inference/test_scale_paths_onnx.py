"""An exported ``.onnx`` file predicts wherever a checkpoint does: videos (``instseg predict model.onnx clip.mp4``)
and slides, with the objects the checkpoint finds; ``load_model_file`` dispatches by suffix and names bad files."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image
from typer.testing import CliRunner

import instseg
from instseg.cli.main import app as cli
from instseg.engine.checkpoint import default_weights_path
from instseg.inference.model_file import is_onnx_file, load_model_file
from instseg.methods.segmenter import InstanceSegmenter
from instseg.structures.masks import rle_to_mask

pytest.importorskip("onnxruntime", reason="onnxruntime (the 'export' extra) is not installed")
SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "dsb2018_sample" / "images"
BIG_SAMPLE = next(SAMPLE.glob("091944f1*.png"))  # 1024 x 1024 fluorescence nuclei
CROWDED_SAMPLE = next(SAMPLE.glob("02903040*.png"))  # 360 x 360, densely packed nuclei


@pytest.fixture(scope="module")
def onnx_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped default model exported to ONNX."""
    from instseg.export import to_onnx

    return to_onnx(instseg.load_model(), tmp_path_factory.mktemp("onnx") / "default.onnx")  # type: ignore[arg-type]


def mask_f1(first: list[np.ndarray], second: list[np.ndarray]) -> float:
    """F1 of one-to-one matches at mask IoU >= 0.5 between two lists of full-frame bool masks."""
    if not first or not second:
        return float(len(first) == len(second))
    a = np.stack(first).reshape(len(first), -1).astype(np.float32)
    b = np.stack(second).reshape(len(second), -1).astype(np.float32)
    inter = a @ b.T
    iou = inter / np.maximum(a.sum(1)[:, None] + b.sum(1)[None] - inter, 1)
    return 2 * int((iou >= 0.5).sum()) / (len(first) + len(second))


def test_load_model_file_dispatches_by_suffix(onnx_file: Path, tmp_path: Path) -> None:
    assert is_onnx_file(onnx_file) and is_onnx_file("a/B.ONNX") and not is_onnx_file(None)
    assert not is_onnx_file(default_weights_path())
    onnx = load_model_file(onnx_file, threads=1)
    assert type(onnx).__name__ == "OnnxModel" and onnx.class_names == instseg.load_model().class_names
    assert isinstance(load_model_file(None), InstanceSegmenter)  # None: the shipped default checkpoint
    with pytest.raises(ValueError, match=r"missing\.onnx"):
        load_model_file(tmp_path / "missing.onnx")
    with pytest.raises(ValueError, match="CPU"):
        load_model_file(onnx_file, device="cuda")


def test_video_with_an_exported_file(onnx_file: Path, tmp_path: Path) -> None:
    av = pytest.importorskip("av", reason="PyAV (the 'video' extra) is not installed")
    image = np.asarray(Image.open(CROWDED_SAMPLE).convert("RGB"))
    clip = tmp_path / "pan.mp4"
    with av.open(str(clip), mode="w") as container:  # a 256-px window panning 8 px per frame over real nuclei
        stream = container.add_stream("libx264", rate=Fraction(10))
        stream.width, stream.height, stream.pix_fmt = 256, 256, "yuv420p"
        for f in range(5):
            window = np.ascontiguousarray(image[50 : 50 + 256, 8 * f : 8 * f + 256])
            for packet in stream.encode(av.VideoFrame.from_ndarray(window, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    frames = {}
    for name, model in (("onnx", onnx_file), ("checkpoint", default_weights_path())):
        run = CliRunner().invoke(cli, ["predict", str(model), str(clip), "--out", str(tmp_path / name)])
        assert run.exit_code == 0, run.output
        lines = (tmp_path / name / "pan_frames.jsonl").read_text().splitlines()
        frames[name] = [json.loads(line)["instances"] for line in lines]
        assert json.loads((tmp_path / name / "pan_vis.json").read_text())
    assert len(frames["onnx"]) == len(frames["checkpoint"]) == 5
    for onnx_frame, torch_frame in zip(frames["onnx"], frames["checkpoint"], strict=True):
        assert len(torch_frame) > 5 and abs(len(onnx_frame) - len(torch_frame)) <= 1
        masks = [[rle_to_mask(e["segmentation"]) for e in frame] for frame in (onnx_frame, torch_frame)]
        assert mask_f1(*masks) >= 0.97


def test_slide_with_an_exported_file(onnx_file: Path, tmp_path: Path) -> None:
    pytest.importorskip("zarr", reason="zarr (the 'slides' extra) is not installed")
    from instseg.export.onnx_model import OnnxModel
    from instseg.inference.slides import object_crop, open_slide, predict_slide

    image = np.asarray(Image.open(BIG_SAMPLE).convert("RGB"))[:640, :700]
    path = tmp_path / "nuclei.tif"
    tifffile.imwrite(path, image, tile=(256, 256), photometric="rgb", compression="zlib")
    objects = {}
    for name, model in (("onnx", OnnxModel(onnx_file, threads=1)), ("checkpoint", instseg.load_model())):
        predictor = instseg.Predictor(model, auto_tile_above=None)  # type: ignore[arg-type]
        with open_slide(path) as source:
            summary = predict_slide(predictor.predict_whole, source, tmp_path / name, tile=384, overlap=128)
        assert summary.tiles == 6
        masks = []
        for line in summary.files["objects"].read_text().splitlines():
            y0, x0, crop = object_crop(json.loads(line))
            full = np.zeros(image.shape[:2], bool)
            full[y0 : y0 + crop.shape[0], x0 : x0 + crop.shape[1]] = crop
            masks.append(full)
        objects[name] = masks
    assert len(objects["checkpoint"]) > 12  # about 20 nuclei lie in this crop
    assert abs(len(objects["onnx"]) - len(objects["checkpoint"])) <= 1
    assert mask_f1(objects["onnx"], objects["checkpoint"]) >= 0.97
