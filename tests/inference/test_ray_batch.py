"""Ray batch prediction on a local Ray instance: the same COCO results as the single-process loop, errors
recorded, resumable shards, path lists."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
import torch

import instseg
from instseg.inference.predict_many import image_jobs, predict_many
from instseg.inference.ray_batch import ShardPredictor, collect_jobs, prepare_run, ray_predict, shard_path

ray = pytest.importorskip("ray", reason="ray (the 'ray' extra) is not installed")
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # Ray Data's own renamed settings

T = TypeVar("T")
SAMPLES = Path(__file__).resolve().parents[2] / "examples" / "dsb2018_sample" / "images"


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    """A local Ray instance with 2 CPUs for this module's tests."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four sample images and one file that is not an image, in one folder."""
    folder = tmp_path_factory.mktemp("ray_images") / "images"
    folder.mkdir()
    for path in sorted(SAMPLES.glob("*.png"))[:4]:
        shutil.copy(path, folder / path.name)
    (folder / "zz_broken.png").write_bytes(b"this is not a png")
    return folder


def one_thread(function: Callable[[], T]) -> T:
    """Run ``function`` with one torch thread, as each 1-CPU Ray actor does (same float summation order)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return function()
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def single_process(images: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The output folder of the single-process loop that ``instseg predict`` runs."""
    out = tmp_path_factory.mktemp("single") / "out"
    predictor = instseg.Predictor(instseg.load_model())
    one_thread(lambda: predict_many(predictor, image_jobs([images]), out, label_maps=False, overlays=False))
    return out


def test_ray_resumes_and_matches_single_process(
    local_ray: None, images: Path, single_process: Path, tmp_path: Path
) -> None:
    out = tmp_path / "ray_out"
    jobs = collect_jobs([images])
    # a run stopped after its first shard: the manifest and shard 0 are there, shards 1 and 2 are not
    prepare_run(out, jobs, shard_size=2)
    one_thread(lambda: ShardPredictor(None, str(out)).predict_shard(0, jobs[:2]))
    summary = ray_predict([images], out, shard_size=2, concurrency=2, progress=False)
    assert (summary.images, summary.failed, summary.shards_run, summary.shards_skipped) == (4, 1, 2, 1)
    assert all(shard_path(out, k).is_file() for k in range(3))
    expected = json.loads((single_process / "results.json").read_text())
    assert len(expected) > 0
    assert json.loads((out / "results.json").read_text()) == expected
    assert json.loads((out / "images.json").read_text()) == json.loads((single_process / "images.json").read_text())
    errors = [json.loads(line) for line in (out / "errors.jsonl").read_text().splitlines()]
    assert [e["image_id"] for e in errors] == [5] and "zz_broken.png" in errors[0]["path"]
    assert "cannot read image" in errors[0]["error"]

    # every shard complete: a rerun predicts nothing and merges the same results
    (out / "results.json").unlink()
    again = ray_predict([images], out, shard_size=2, progress=False)
    assert (again.shards_run, again.shards_skipped) == (0, 3)
    assert json.loads((out / "results.json").read_text()) == expected
    with pytest.raises(ValueError, match="other inputs or another shard size"):
        ray_predict([images], out, shard_size=3, progress=False)


def test_path_lists(images: Path, tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    names = sorted(p.name for p in images.iterdir())
    text = tmp_path / "list.txt"
    text.write_text("# images to predict\n" + "".join(f"{images / n}\n" for n in names) + "\n")
    parquet = tmp_path / "list.parquet"
    pq.write_table(pa.table({"path": [str(images / n) for n in names]}), parquet)
    expected = [(i, images / n) for i, n in enumerate(names, start=1)]
    assert collect_jobs([text]) == expected
    assert collect_jobs([parquet]) == expected
    assert collect_jobs([images]) == expected  # a folder gives the same ids as its list
    with pytest.raises(ValueError, match="not both"):
        collect_jobs([text, images])
    pq.write_table(pa.table({"file": ["a.png"]}), tmp_path / "bad.parquet")
    with pytest.raises(ValueError, match=r"bad\.parquet"):
        collect_jobs([tmp_path / "bad.parquet"])


def test_ray_with_an_exported_file(local_ray: None, images: Path, tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime", reason="onnxruntime (the 'export' extra) is not installed")
    from instseg.export import to_onnx
    from instseg.export.onnx_model import OnnxModel

    onnx = to_onnx(instseg.load_model(), tmp_path / "default.onnx")  # type: ignore[arg-type]
    inputs = sorted(images.glob("*.png"))[:2]
    single = tmp_path / "single"
    predictor = instseg.Predictor(OnnxModel(onnx, threads=1))  # type: ignore[arg-type]
    predict_many(predictor, image_jobs(inputs), single, label_maps=False, overlays=False)
    summary = ray_predict(inputs, tmp_path / "ray", checkpoint=onnx, concurrency=1, progress=False)
    assert (summary.images, summary.failed) == (2, 0) and summary.instances > 0
    expected = json.loads((single / "results.json").read_text())
    assert json.loads(summary.results_path.read_text()) == expected  # the same file, the same runtime, 1 thread
    with pytest.raises(ValueError, match="CPU actors"):
        ray_predict(inputs, tmp_path / "gpu", checkpoint=onnx, num_gpus=1, device="cuda", progress=False)
