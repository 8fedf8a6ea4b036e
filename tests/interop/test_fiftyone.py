"""``Instances`` <-> FiftyOne ``Detections``: masks, boxes, labels and scores survive, FiftyOne draws the masks on
the same pixels, and no database is started for in-memory labels and samples."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from instseg.interop.fiftyone import BOX_ATTRIBUTE, from_fiftyone, to_fiftyone
from instseg.structures import Instances

os.environ.setdefault("FIFTYONE_DO_NOT_TRACK", "true")  # no usage reports from a test run
fo = pytest.importorskip("fiftyone", reason="fiftyone (the 'fiftyone' extra) is not installed")
SIZE = (60, 80)
NAMES = ["nucleus", "cell", "debris"]


def random_instances(seed: int, n: int = 6) -> Instances:
    """``n`` random blob masks (one empty), compact, with scores and labels."""
    rng = np.random.default_rng(seed)
    masks = np.zeros((n, *SIZE), dtype=bool)
    for i in range(n - 1):
        y0, x0 = rng.integers(0, SIZE[0] - 12), rng.integers(0, SIZE[1] - 12)
        masks[i, y0 : y0 + rng.integers(2, 12), x0 : x0 + rng.integers(2, 12)] = True
        masks[i] &= rng.random(SIZE) > 0.2
    return Instances(
        SIZE,
        masks=torch.from_numpy(masks),
        labels=torch.from_numpy(rng.integers(0, 3, n)),
        scores=torch.from_numpy(rng.random(n).astype(np.float32)),
    ).compact()


@pytest.mark.parametrize("seed", [0, 1])
def test_round_trip_and_fiftyone_draws_the_same_pixels(seed: int) -> None:
    instances = random_instances(seed)
    detections = to_fiftyone(instances, class_names=NAMES)
    assert isinstance(detections, fo.Detections) and len(detections.detections) == len(instances)
    assert [d.label for d in detections.detections] == [NAMES[k] for k in instances.labels.tolist()]
    full = instances.masks.numpy()  # type: ignore[union-attr]
    for d, mask in zip(detections.detections, full, strict=True):
        if mask.any():  # FiftyOne's own renderer puts each box-sized mask back on the image's pixels
            drawn = d.to_segmentation(frame_size=(SIZE[1], SIZE[0])).mask > 0
            np.testing.assert_array_equal(drawn, mask)
        else:
            assert d.mask is None
    back = from_fiftyone(detections, SIZE, class_names=NAMES)
    assert back.is_compact
    assert torch.equal(back.masks, instances.masks)  # type: ignore[arg-type]
    assert torch.equal(back.labels, instances.labels)
    assert torch.allclose(back.scores, instances.scores)  # type: ignore[arg-type]
    nonempty = torch.from_numpy(full.any((1, 2)))
    assert torch.equal(back.boxes[nonempty], instances.boxes[nonempty])


def test_boxes_that_are_not_the_masks_windows_travel_as_an_attribute() -> None:
    mask = torch.zeros((1, *SIZE), dtype=torch.bool)
    mask[0, 10:20, 30:45] = True
    box = torch.tensor([[28.5, 9.25, 46.0, 21.75]])  # a detector's box, wider than its mask
    instances = Instances(SIZE, boxes=box, masks=mask, labels=torch.tensor([1]), scores=torch.tensor([0.8]))
    (detection,) = to_fiftyone(instances).detections
    assert detection.label == "1" and detection[BOX_ATTRIBUTE] == box[0].tolist()
    assert detection.bounding_box == pytest.approx([30 / 80, 10 / 60, 15 / 80, 10 / 60], abs=1e-4)
    back = from_fiftyone(fo.Detections(detections=[detection]), SIZE)
    assert torch.equal(back.boxes, box) and torch.equal(back.masks, mask)  # type: ignore[arg-type]


def test_samples_without_database_and_foreign_masks() -> None:
    instances = random_instances(2)
    sample = fo.Sample(filepath="/images/cells.png", predictions=to_fiftyone(instances, NAMES))  # no database
    assert sample.in_dataset is False
    assert len(from_fiftyone(sample["predictions"], SIZE, NAMES)) == len(instances)
    # a mask at another resolution than its box (FiftyOne stretches it): resized to the box, nearest neighbour
    half = fo.Detection(label="cell", bounding_box=[0.25, 0.5, 0.5, 0.25], mask=np.ones((3, 4), np.uint8))
    boxes_only = fo.Detection(label="nucleus", bounding_box=[0.0, 0.0, 0.1, 0.1], confidence=0.3)
    back = from_fiftyone(fo.Detections(detections=[half, boxes_only]), SIZE, NAMES)
    assert back.masks[0, 30:45, 20:60].all() and int(back.masks[0].sum()) == 15 * 40  # type: ignore[index]
    assert int(back.masks[1].sum()) == 0 and back.labels.tolist() == [1, 0]  # type: ignore[index]
    assert back.scores.tolist() == pytest.approx([1.0, 0.3])  # type: ignore[union-attr]


def test_bad_labels() -> None:
    with pytest.raises(ValueError, match="name"):
        to_fiftyone(random_instances(3), class_names=["only one"])
    unnamed = fo.Detections(detections=[fo.Detection(label="tumour", bounding_box=[0, 0, 0.5, 0.5])])
    with pytest.raises(ValueError, match="tumour"):
        from_fiftyone(unnamed, SIZE, NAMES)
    with pytest.raises(ValueError, match="class_names"):
        from_fiftyone(unnamed, SIZE)
    empty = to_fiftyone(Instances.empty(SIZE, with_scores=True))
    assert len(empty.detections) == 0 and len(from_fiftyone(empty, SIZE)) == 0
