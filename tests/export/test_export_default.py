"""The shipped (trained) default model exported whole: the ONNX file segments the sample images like PyTorch,
through the Python API and through ``instseg export`` + ``instseg predict model.onnx``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from export_testdata import assert_same_instances
from instseg_runtime import OnnxPredictor
from typer.testing import CliRunner

import instseg
from instseg.cli.main import app
from instseg.data.image_io import read_image
from instseg.export import to_onnx

SAMPLES = Path(__file__).resolve().parents[2] / "examples" / "dsb2018_sample" / "images"


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[torch.nn.Module, Path]:
    model = instseg.load_model()
    return model, to_onnx(model, tmp_path_factory.mktemp("default") / "default.onnx")


def test_default_model_onnx_matches_pytorch_on_samples(exported: tuple[torch.nn.Module, Path]) -> None:
    model, path = exported
    predictor = OnnxPredictor(path, threads=1)
    images = sorted(SAMPLES.glob("*.png"))[:3]
    assert images, f"no sample images in {SAMPLES}"
    found = 0
    for file in images:
        image = read_image(file)
        with torch.no_grad():
            ref = model.predict(image)  # type: ignore[operator]
        out = predictor(image)
        assert_same_instances(ref, out.boxes, out.labels, out.scores, out.masks, file.name)
        found += len(out)
    assert found > 10  # the trained model finds the nuclei
    empty = predictor(np.zeros((64, 96, 3), np.uint8))
    assert len(empty) == 0 and empty.masks.shape == (0, 64, 96) and empty.boxes.shape == (0, 4)


def test_metadata_names_classes_and_input_rule(exported: tuple[torch.nn.Module, Path]) -> None:
    model, path = exported
    meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert json.loads(meta["class_names"]) == list(model.class_names)  # type: ignore[arg-type]
    rule = json.loads(meta["input_rule"])
    assert rule["size_divisibility"] == model.size_divisibility
    assert rule["min_size"] == model.min_size and rule["max_size"] == model.max_size
    assert rule["pixel_std"] == [float(v) for v in model.pixel_std.flatten()]  # type: ignore[union-attr]
    assert json.loads(meta["grouping"])["fg_threshold"] == model.postprocessor.fg_threshold  # type: ignore[union-attr]


def test_cli_export_then_predict_with_the_onnx_file(tmp_path: Path) -> None:
    runner = CliRunner()
    onnx_file = tmp_path / "model.onnx"
    result = runner.invoke(app, ["export", "default", "--format", "onnx", "--out", str(onnx_file)])
    assert result.exit_code == 0, result.output
    again = runner.invoke(app, ["export", "default", "--out", str(onnx_file)])
    assert again.exit_code == 2 and "exists already" in again.output
    bad = runner.invoke(app, ["export", "default", "--format", "tflite", "--out", str(tmp_path / "x.onnx")])
    assert bad.exit_code == 2 and "--format tflite" in bad.output
    image = sorted(SAMPLES.glob("*.png"))[0]
    out = tmp_path / "pred"
    result = runner.invoke(app, ["predict", str(onnx_file), str(image), "--out", str(out)])
    assert result.exit_code == 0, result.output
    torch_out = tmp_path / "pred_torch"
    result = runner.invoke(app, ["predict", str(image), "--out", str(torch_out)])
    assert result.exit_code == 0, result.output
    onnx_files = sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())
    torch_files = sorted(p.relative_to(torch_out) for p in torch_out.rglob("*") if p.is_file())
    assert onnx_files == torch_files  # the same outputs: results json, label map, overlay
    results = [p for p in out.rglob("*.json")]
    assert results


def test_cli_eval_of_the_onnx_file_matches_the_checkpoint(
    exported: tuple[torch.nn.Module, Path], tmp_path: Path
) -> None:
    """``instseg eval model.onnx --data ...`` scores the exported file itself, as the checkpoint is scored."""
    _, path = exported
    data = SAMPLES.parent / "annotations" / "instances_sample.json"
    checkpoint = Path(instseg.__file__).parent / "weights" / "default.pt"
    runner = CliRunner()
    figures = {}
    for name, source in (("onnx", path), ("pytorch", checkpoint)):
        out = tmp_path / f"{name}.json"
        args = ["eval", str(source), "--data", str(data), "--max-dets", "1000", "--json", "--out", str(out)]
        result = runner.invoke(app, [*args, "--batch-size", "2"] if name == "onnx" else args)
        assert result.exit_code == 0, result.output
        figures[name] = json.loads(out.read_text())
    assert figures["pytorch"]["segm/AP"] > 0.2  # the trained model on its own kind of images
    assert abs(figures["onnx"]["segm/AP"] - figures["pytorch"]["segm/AP"]) <= 0.002
    assert figures["onnx"]["match/F1@0.5"] == pytest.approx(figures["pytorch"]["match/F1@0.5"], abs=0.01)
