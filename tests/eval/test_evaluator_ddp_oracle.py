"""InstanceEvaluator under torch.distributed (2 gloo processes) gives the figures of 1 process on the same data,
with imperfect predictions that differ per rank, so that merging only one rank's results cannot pass."""

from __future__ import annotations

import socket
from typing import Any

import pytest
import torch
from test_instance_evaluator import CATEGORY_IDS, gt_instances, make_gt

from instseg.eval import InstanceEvaluator
from instseg.structures.instances import Instances

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

WORLD = 2
REPEATED = 3  # rank 0 processes it; rank 1 sees it again at the end (a padded sampler), with other predictions


def imperfect(gt: dict[str, Any], image_id: int) -> Instances:
    """The ground truth of one image, damaged by image id: shifted masks, one object in three dropped, a spurious
    copy, scores that differ per image; image 4 gets no prediction at all although it has objects."""
    pred = gt_instances(gt, image_id)
    if image_id == 4 or len(pred) == 0:
        return Instances.empty(pred.image_size, with_scores=True)
    assert pred.masks is not None
    masks = torch.roll(pred.masks, shifts=(0, image_id % 2), dims=(1, 2))  # IoU drops below 1, differently per image
    keep = torch.tensor([k % 3 != 2 for k in range(len(pred))])
    scores = torch.linspace(0.95, 0.4, len(pred)) * (1 - 0.05 * image_id)
    out = Instances(pred.image_size, labels=pred.labels[keep], masks=masks[keep], scores=scores[keep])
    spurious = Instances(pred.image_size, labels=pred.labels[:1], masks=masks[:1].flip(2), scores=torch.tensor([0.7]))
    return Instances.cat([out, spurious])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _worker(rank: int, port: int, gt: dict[str, Any], queue: Any) -> None:
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD)
    try:
        ev = InstanceEvaluator(gt, CATEGORY_IDS)
        ids = [img["id"] for img in gt["images"]][rank::WORLD]
        ev.process([{"image_id": i} for i in ids], [imperfect(gt, i) for i in ids])
        if rank == 1:  # the repeat carries different (empty) predictions: the first occurrence (rank 0's) must win
            size = (gt["images"][0]["height"], gt["images"][0]["width"])
            ev.process([{"image_id": REPEATED}], [Instances.empty(size, with_scores=True)])
        queue.put((rank, ev.evaluate()))
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_two_ranks_equal_one_process_on_imperfect_predictions() -> None:
    import torch.multiprocessing as mp

    gt = make_gt(num_images=7, seed=4)
    ids = [img["id"] for img in gt["images"]]
    assert REPEATED in ids[0::WORLD]
    one = InstanceEvaluator(gt, CATEGORY_IDS)
    one.process([{"image_id": i} for i in ids], [imperfect(gt, i) for i in ids])
    expected = one.evaluate()
    # the oracle is informative: imperfect figures, and rank 0's shard alone would score differently
    assert 0.1 < expected["segm/AP"] < 0.95 and 0.1 < expected["match/F1@0.5"] < 1.0
    shard = InstanceEvaluator(gt, CATEGORY_IDS)
    shard.process([{"image_id": i} for i in ids[0::WORLD]], [imperfect(gt, i) for i in ids[0::WORLD]])
    assert shard.evaluate()["segm/AP"] != pytest.approx(expected["segm/AP"])

    queue = mp.get_context("spawn").Queue()
    mp.start_processes(_worker, args=(_free_port(), gt, queue), nprocs=WORLD, start_method="spawn", join=True)
    out = dict(queue.get(timeout=60) for _ in range(WORLD))
    assert out[1] == {}
    assert out[0].keys() == expected.keys()
    for key, value in expected.items():
        assert out[0][key] == pytest.approx(value, abs=1e-12), key
