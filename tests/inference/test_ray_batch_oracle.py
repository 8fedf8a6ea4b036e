"""The Ray job's pieces that run without a cluster, against hand-written inputs: path lists (comments, blank
lines, relative paths, parquet), job ids, the manifest rule (resume only on the same inputs), the shard files and
their merge (the same results as one list, failures kept), option checks, and one actor's shard work with a
stand-in predictor (failures recorded, predictor options passed on)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from instseg.inference.ray_batch import (
    ShardPredictor,
    collect_jobs,
    merge_shards,
    prepare_run,
    ray_predict,
    read_path_list,
    shard_path,
)
from instseg.structures import Instances


@pytest.fixture
def images(tmp_path: Path) -> list[Path]:
    folder = tmp_path / "imgs"
    folder.mkdir()
    paths = []
    for k in range(3):
        p = folder / f"i{k}.png"
        Image.fromarray(np.full((8, 10, 3), 50 * k, np.uint8)).save(p)
        paths.append(p)
    return paths


def test_path_lists(tmp_path: Path, images: list[Path]) -> None:
    lst = tmp_path / "lists" / "l.txt"
    lst.parent.mkdir()
    lst.write_text(f"# a comment\n\n  ../imgs/i2.png  \n{images[0]}\n   # indented comment\n")
    assert read_path_list(lst) == [lst.parent / "../imgs/i2.png", images[0]]
    assert collect_jobs([lst]) == [(1, lst.parent / "../imgs/i2.png"), (2, images[0])]
    # image files and folders: as ``instseg predict`` finds them, ids from 1
    assert collect_jobs([images[1], images[0]]) == [(1, images[1]), (2, images[0])]
    assert collect_jobs([images[0].parent]) == [(1, images[0]), (2, images[1]), (3, images[2])]
    with pytest.raises(ValueError, match="not both"):
        collect_jobs([lst, images[0]])
    pq = pytest.importorskip("pyarrow.parquet")
    import pyarrow as pa

    table = tmp_path / "l.parquet"
    pq.write_table(pa.table({"path": ["imgs/i1.png", None, str(images[2])]}), table)
    assert read_path_list(table) == [tmp_path / "imgs/i1.png", images[2]]
    assert collect_jobs([lst, table]) == [(1, lst.parent / "../imgs/i2.png"), (2, images[0]),
                                         (3, tmp_path / "imgs/i1.png"), (4, images[2])]  # fmt: skip
    bad = tmp_path / "bad.parquet"
    pq.write_table(pa.table({"file": ["x"]}), bad)
    with pytest.raises(ValueError, match=r"bad\.parquet"):
        read_path_list(bad)


def test_manifest_resumes_only_the_same_run(tmp_path: Path, images: list[Path]) -> None:
    jobs = list(enumerate(images, start=1))
    out = tmp_path / "run"
    manifest = prepare_run(out, jobs, shard_size=2)
    assert manifest["shards"] == 2 and manifest["images"] == 3 and (out / "shards").is_dir()
    assert json.loads((out / "manifest.json").read_text()) == manifest
    (out / "shards" / "shard-000000.jsonl").write_text("{}\n")
    assert prepare_run(out, jobs, shard_size=2) == manifest  # the same inputs: resumed, shard kept
    assert (out / "shards" / "shard-000000.jsonl").is_file()
    for other_jobs, size in [(jobs[::-1], 2), (jobs[:2], 2), (jobs, 3)]:
        with pytest.raises(ValueError, match="other inputs"):
            prepare_run(out, other_jobs, shard_size=size)
    again = prepare_run(out, jobs[:2], shard_size=1, overwrite=True)
    assert again["shards"] == 2 and not (out / "shards" / "shard-000000.jsonl").exists()
    (out / "manifest.json").write_text("{broken")
    with pytest.raises(ValueError, match="unreadable manifest"):
        prepare_run(out, jobs, shard_size=1)
    assert prepare_run(tmp_path / "exact", jobs, shard_size=3)["shards"] == 1


def test_merge_keeps_order_results_and_failures(tmp_path: Path) -> None:
    (tmp_path / "shards").mkdir()
    r1 = [{"image_id": 1, "score": 0.5}, {"image_id": 1, "score": 0.25}]
    r3 = [{"image_id": 3, "score": 1.0}]
    shard_path(tmp_path, 0).write_text(
        json.dumps({"image_id": 1, "path": "/a/x.png", "height": 4, "width": 5, "results": r1}) + "\n"
        + json.dumps({"image_id": 2, "path": "/a/y.png", "error": "y.png: cannot read image"}) + "\n"
    )  # fmt: skip
    shard_path(tmp_path, 1).write_text(
        json.dumps({"image_id": 3, "path": "/b/z.png", "height": 6, "width": 7, "results": r3}) + "\n"
        + json.dumps({"image_id": 4, "path": "/b/w.png", "height": 2, "width": 2, "results": []}) + "\n"
    )  # fmt: skip
    assert shard_path(tmp_path, 1).name == "shard-000001.jsonl"
    assert merge_shards(tmp_path, 2) == (3, 1, 3)
    assert (tmp_path / "results.json").read_text() == json.dumps(r1 + r3)
    listed = json.loads((tmp_path / "images.json").read_text())
    assert listed["images"] == [
        {"id": 1, "file_name": "x.png", "height": 4, "width": 5},
        {"id": 3, "file_name": "z.png", "height": 6, "width": 7},
        {"id": 4, "file_name": "w.png", "height": 2, "width": 2},
    ]
    assert listed["skipped"] == ["/a/y.png"]
    errors = [json.loads(line) for line in (tmp_path / "errors.jsonl").read_text().splitlines()]
    assert errors == [{"image_id": 2, "path": "/a/y.png", "error": "y.png: cannot read image"}]
    with pytest.raises(ValueError, match=r"shard-000002\.jsonl"):
        merge_shards(tmp_path, 3)


def test_option_checks_come_first(tmp_path: Path, images: list[Path]) -> None:
    pytest.importorskip("ray")
    empty = tmp_path / "empty"
    empty.mkdir()
    for kwargs in ({"shard_size": 0}, {"concurrency": 0}):
        with pytest.raises(ValueError, match="must be >= 1"):
            ray_predict([empty], tmp_path / "out", **kwargs)  # type: ignore[arg-type]
    # the smallest valid settings pass the checks (and stop at the empty input, before any cluster starts)
    with pytest.raises(ValueError, match="no image files"):
        ray_predict([empty], tmp_path / "out", shard_size=1, concurrency=1)
    # an exported file runs on CPU actors only: any GPU share (a whole one, a fraction) or a non-CPU device is
    # refused first, before the output folder is looked at (here one holding other files, the next check: so a
    # missed refusal fails at once, with the folder's error, and never starts a cluster)
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("not ours")
    refused: list[dict[str, Any]] = [
        {"num_gpus": 1.0},
        {"num_gpus": 0.25},
        {"device": "cuda"},
        {"num_gpus": 2.0, "device": "cuda:0"},
    ]
    for kwargs in refused:
        with pytest.raises(ValueError, match="exported ONNX files run on CPU actors here"):
            ray_predict(images, busy, checkpoint=tmp_path / "m.ONNX", **kwargs)  # type: ignore[arg-type]
    # on CPU actors it passes that check and stops at the next one
    with pytest.raises(ValueError, match="already holds 1 entries"):
        ray_predict(images, busy, checkpoint=tmp_path / "m.onnx", num_gpus=0.0, device="cpu")
    assert sorted(p.name for p in busy.iterdir()) == ["keep.txt"]


def test_one_shard_with_a_stand_in_predictor(tmp_path: Path, images: list[Path]) -> None:
    out = tmp_path / "run"
    (out / "shards").mkdir(parents=True)
    actor = ShardPredictor(None, str(out), predictor_kwargs={"score_thr": 0.7, "tile_size": 512})
    assert actor.predictor.score_thr == 0.7 and actor.predictor.tile_size == 512
    assert ShardPredictor(None, str(out)).predictor.score_thr is None
    assert ShardPredictor(None, str(out), category_ids=[5]).category_ids == [5]

    def stand_in(image: np.ndarray) -> Instances:
        if image[0, 0, 0] == 100:
            raise RuntimeError("model failed")
        masks = torch.zeros((1, *image.shape[:2]), dtype=torch.bool)
        masks[0, 1:3, 2:5] = True
        return Instances(image.shape[:2], masks=masks, scores=torch.tensor([0.8])).compact()

    actor.predictor = stand_in  # type: ignore[assignment]
    actor.category_ids = [42]
    batch = {
        "shard": np.array([3]),
        "jobs": np.array([json.dumps([[7, str(images[0])], [8, str(images[2])], [9, str(tmp_path / "gone.png")]])]),
    }
    counts = actor(batch)
    assert counts["shard"].tolist() == [3] and counts["done"].tolist() == [1] and counts["failed"].tolist() == [2]
    lines = [json.loads(line) for line in shard_path(out, 3).read_text().splitlines()]
    assert [line["image_id"] for line in lines] == [7, 8, 9]
    assert (lines[0]["height"], lines[0]["width"]) == (8, 10)
    assert [(r["image_id"], r["category_id"], r["area"], r["bbox"]) for r in lines[0]["results"]] == [
        (7, 42, 6, [2.0, 1.0, 3.0, 2.0])]  # fmt: skip
    assert lines[1]["error"] == "RuntimeError: model failed" and "gone.png" in lines[2]["error"]
