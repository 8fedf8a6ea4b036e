"""InstanceEvaluator: process/evaluate over Instances, input checks, and gathering under torch.distributed."""

from __future__ import annotations

import socket
from typing import Any

import numpy as np
import pytest
import torch

from instseg.eval import DatasetEvaluator, InstanceEvaluator, evaluate_results
from instseg.structures.instances import Instances
from instseg.structures.masks import masks_to_rles, rle_to_mask

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # pycocotools decode under numpy 2

CATEGORY_IDS = [5, 9]  # contiguous label 0 -> category 5, label 1 -> category 9


def make_gt(num_images: int = 6, h: int = 48, w: int = 56, seed: int = 0) -> dict[str, Any]:
    """Random squares of two categories; image 0 has no objects."""
    rng = np.random.default_rng(seed)
    images: list[dict[str, Any]] = []
    anns: list[dict[str, Any]] = []
    for i in range(num_images):
        images.append({"id": i + 1, "height": h, "width": w, "file_name": f"{i + 1}.png"})
        for _ in range(0 if i == 0 else int(rng.integers(1, 5))):
            m = np.zeros((h, w), dtype=bool)
            y, x, s = int(rng.integers(0, h - 8)), int(rng.integers(0, w - 8)), int(rng.integers(4, 12))
            m[y : y + s, x : x + s] = True
            rle = masks_to_rles(m[None])[0]
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": i + 1,
                    "category_id": int(rng.choice(CATEGORY_IDS)),
                    "segmentation": rle,
                    "area": int(m.sum()),
                    "iscrowd": 0,
                }
            )
    cats = [{"id": c, "name": f"c{c}"} for c in CATEGORY_IDS]
    return {"images": images, "annotations": anns, "categories": cats}


def gt_instances(gt: dict[str, Any], image_id: int, scores: bool = True) -> Instances:
    """The ground truth of one image as predictions (optionally with decreasing scores)."""
    img = next(i for i in gt["images"] if i["id"] == image_id)
    h, w = img["height"], img["width"]
    anns = [a for a in gt["annotations"] if a["image_id"] == image_id]
    masks = torch.from_numpy(np.stack([rle_to_mask(a["segmentation"]) for a in anns])) if anns else None
    labels = torch.tensor([CATEGORY_IDS.index(a["category_id"]) for a in anns], dtype=torch.int64)
    if masks is None:
        return Instances.empty((h, w), with_scores=scores)
    s = torch.linspace(0.99, 0.6, len(anns)) if scores else None
    return Instances((h, w), labels=labels, masks=masks, scores=s)


def test_protocol_and_perfect_predictions() -> None:
    gt = make_gt()
    ev = InstanceEvaluator(gt, CATEGORY_IDS)
    assert isinstance(ev, DatasetEvaluator)
    ids = [img["id"] for img in gt["images"]]
    ev.process([{"image_id": i} for i in ids[:3]], [gt_instances(gt, i) for i in ids[:3]])
    ev.process([{"image_id": i} for i in ids[3:]], [gt_instances(gt, i, scores=False) for i in ids[3:]])
    m = ev.evaluate()
    assert m["segm/AP"] == pytest.approx(1.0)
    assert m["bbox/AP"] == pytest.approx(1.0)
    assert m["match/F1@0.5"] == 1.0 and m["match/PQ@0.95"] == 1.0
    assert m["max_dets"] == 100 and m["match/score_thr"] == 0.5
    ev.reset()
    assert ev.evaluate() == {}


def test_same_as_evaluate_results_and_only_processed_images() -> None:
    gt = make_gt(seed=1)
    ev = InstanceEvaluator(gt, CATEGORY_IDS, max_dets=50, score_thr=0.7)
    rng = np.random.default_rng(0)
    results = []
    for img in gt["images"][:4]:  # images 5, 6 never seen: they must not count as misses
        pred = gt_instances(gt, img["id"])
        if len(pred):
            pred.scores = torch.from_numpy(rng.random(len(pred))).float()
            pred = pred[torch.from_numpy(rng.random(len(pred)) < 0.7)]
        ev.process([{"image_id": img["id"]}], [pred])
        results += pred.to_coco(img["id"], CATEGORY_IDS)
    sub = {**gt, "images": gt["images"][:4], "annotations": [a for a in gt["annotations"] if a["image_id"] <= 4]}
    expected = evaluate_results(sub, results, max_dets=50, score_thr=0.7)
    got = ev.evaluate()
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, abs=1e-12), key


def test_no_predictions_at_all() -> None:
    gt = make_gt()
    ev = InstanceEvaluator(gt, CATEGORY_IDS)
    ev.process([{"image_id": 2}], [Instances.empty((48, 56), with_scores=True)])
    m = ev.evaluate()
    assert m["segm/AP"] == 0.0 and m["match/recall@0.5"] == 0.0


def test_bad_inputs_name_the_fault() -> None:
    gt = make_gt()
    ev = InstanceEvaluator(gt, CATEGORY_IDS)
    with pytest.raises(ValueError, match="image_id=777"):
        ev.process([{"image_id": 777}], [Instances.empty((48, 56))])
    with pytest.raises(ValueError, match=r"image_id=2 are at size \(10, 10\)"):
        ev.process([{"image_id": 2}], [Instances.empty((10, 10))])
    with pytest.raises(ValueError, match=r"category ids \[4\]"):
        InstanceEvaluator(gt, [5, 4])
    with pytest.raises(ValueError, match="max_dets"):
        InstanceEvaluator(gt, CATEGORY_IDS, max_dets=0)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _worker(rank: int, world: int, port: int, gt: dict[str, Any], queue: Any) -> None:
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        ev = InstanceEvaluator(gt, CATEGORY_IDS)
        ids = [img["id"] for img in gt["images"]]
        mine = ids[rank::world] + ([ids[0]] if rank == 1 else [])  # rank 1 repeats an image, as a padded sampler does
        ev.process([{"image_id": i} for i in mine], [gt_instances(gt, i) for i in mine])
        queue.put((rank, ev.evaluate()))
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_gathers_across_ranks() -> None:
    import torch.multiprocessing as mp

    gt = make_gt(seed=2)
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    mp.start_processes(_worker, args=(2, _free_port(), gt, queue), nprocs=2, start_method="spawn", join=True)
    out = dict(queue.get(timeout=60) for _ in range(2))
    assert out[1] == {}
    ev = InstanceEvaluator(gt, CATEGORY_IDS)
    ev.process([{"image_id": img["id"]} for img in gt["images"]], [gt_instances(gt, img["id"]) for img in gt["images"]])
    assert out[0] == ev.evaluate()
