"""``Instances`` <-> ``supervision.Detections``: masks, boxes, labels and scores survive the round trip."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from instseg.interop.supervision import from_detections, to_detections
from instseg.structures import Instances

sv = pytest.importorskip("supervision", reason="supervision (the 'supervision' extra) is not installed")


def random_instances(seed: int, n: int = 5, size: tuple[int, int] = (60, 80)) -> Instances:
    """``n`` random blob masks (one empty) with scores and labels."""
    rng = np.random.default_rng(seed)
    masks = np.zeros((n, *size), dtype=bool)
    for i in range(n - 1):
        y0, x0 = rng.integers(0, size[0] - 10), rng.integers(0, size[1] - 10)
        masks[i, y0 : y0 + rng.integers(2, 10), x0 : x0 + rng.integers(2, 10)] = rng.random() > 0.0
        masks[i] &= rng.random(size) > 0.2
    return Instances(
        size,
        masks=torch.from_numpy(masks),
        labels=torch.from_numpy(rng.integers(0, 3, n)),
        scores=torch.from_numpy(rng.random(n).astype(np.float32)),
    )


@pytest.mark.parametrize("compact", [True, False])
def test_round_trip(compact: bool) -> None:
    instances = random_instances(0)
    detections = to_detections(instances, class_names=["a", "b", "c"], compact=compact)
    assert isinstance(detections.mask, sv.CompactMask) is compact
    np.testing.assert_array_equal(np.asarray(detections.mask), instances.masks.numpy())  # type: ignore[union-attr]
    np.testing.assert_array_equal(detections.class_id, instances.labels.numpy())
    assert list(detections.data["class_name"]) == [["a", "b", "c"][k] for k in instances.labels.tolist()]
    back = from_detections(detections)
    assert back.is_compact is compact
    assert torch.equal(back.masks, instances.masks)  # type: ignore[arg-type]
    assert torch.equal(back.boxes, instances.boxes) and torch.equal(back.labels, instances.labels)
    assert torch.equal(back.scores, instances.scores)  # type: ignore[arg-type]


def test_compact_instances_convert_without_full_masks() -> None:
    compact = random_instances(1).compact()
    detections = to_detections(compact)
    assert detections.mask.area.tolist() == compact.mask_areas().tolist()
    filtered = detections[detections.confidence > 0.5]  # supervision's own filtering keeps the masks compact
    back = from_detections(filtered)
    keep = compact.scores > 0.5  # type: ignore[operator]
    assert torch.equal(back.masks, compact[keep].masks)  # type: ignore[arg-type]


def test_boxes_only_and_bad_sizes() -> None:
    boxes = Instances((30, 40), boxes=torch.tensor([[1.0, 2.0, 10.0, 12.5]]), labels=torch.tensor([1]))
    detections = to_detections(boxes)
    assert detections.mask is None and detections.confidence is None
    with pytest.raises(ValueError, match="image_size"):
        from_detections(detections)
    assert torch.equal(from_detections(detections, image_size=(30, 40)).boxes, boxes.boxes)
    with pytest.raises(ValueError, match="differs"):
        from_detections(to_detections(random_instances(2)), image_size=(10, 10))
    with pytest.raises(ValueError, match="name"):
        to_detections(random_instances(3), class_names=["only one"])
    empty = to_detections(Instances.empty((30, 40), with_scores=True))
    assert len(empty) == 0 and len(from_detections(empty)) == 0
