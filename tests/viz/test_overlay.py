"""draw_instances: colours, mask fill, contours, boxes and text land where the objects are."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from instseg.structures import Instances
from instseg.viz import draw_instances, instance_colors


def scene() -> tuple[np.ndarray, Instances]:
    image = np.full((40, 60, 3), 50, dtype=np.uint8)
    masks = torch.zeros((2, 40, 60), dtype=torch.bool)
    masks[0, 5:15, 5:20] = True
    masks[1, 20:35, 30:35] = True  # an L shape, so its box is not its outline
    masks[1, 30:35, 30:55] = True
    return image, Instances((40, 60), masks=masks, labels=torch.tensor([0, 1]), scores=torch.tensor([0.9, 0.6]))


def test_colors_are_distinct_and_stable():
    colors = instance_colors(50)
    assert colors.shape == (50, 3) and colors.dtype == np.uint8
    assert len({tuple(c) for c in colors}) == 50
    assert np.array_equal(instance_colors(3), colors[:3])
    assert instance_colors(0).shape == (0, 3)


def test_fill_and_contours_only_inside_masks():
    image, inst = scene()
    out = draw_instances(image, inst, show_boxes=False, show_labels=False)
    assert out.shape == image.shape and out.dtype == np.uint8
    inside = inst.masks.any(0).numpy()
    assert np.array_equal(out[~inside], image[~inside])
    assert (np.abs(out[inside].astype(int) - 50).sum(axis=1) > 0).all()
    colors = instance_colors(2)
    assert np.array_equal(out[5, 10], colors[0])  # top edge of object 0 is contour, drawn in full colour
    assert not np.array_equal(out[10, 12], colors[0])  # interior is blended, not solid
    assert np.array_equal(image, np.full((40, 60, 3), 50, dtype=np.uint8)), "the input must not be modified"


def test_boxes_and_labels_are_drawn_around_objects():
    image, inst = scene()
    plain = draw_instances(image, inst, show_boxes=False, show_labels=False)
    boxed = draw_instances(image, inst, show_boxes=True, show_labels=False)
    changed = np.argwhere((boxed != plain).any(axis=2))
    assert len(changed) > 0
    # Box edges of object 1 (xyxy 30, 20, 55, 35; exclusive right/bottom edge): columns 30 and 54.
    assert set(changed[:, 1]) <= set(range(5, 20)) | set(range(30, 55))
    assert np.array_equal(boxed[25, 54], instance_colors(2)[1]) and np.array_equal(boxed[25, 55], plain[25, 55])
    assert np.array_equal(boxed[20, 45], instance_colors(2)[1]) and np.array_equal(boxed[21, 45], plain[21, 45])
    labelled = draw_instances(image, inst, class_names=["cat", "dog"], show_boxes=False, show_labels=True)
    assert (labelled != plain).any()


def test_labels_auto_hidden_for_crowded_images():
    image = np.zeros((64, 64, 3), dtype=np.uint8)
    masks = torch.zeros((50, 64, 64), dtype=torch.bool)
    for i in range(50):
        masks[i, (i // 8) * 8 : (i // 8) * 8 + 4, (i % 8) * 8 : (i % 8) * 8 + 4] = True
    inst = Instances((64, 64), masks=masks)
    auto = draw_instances(image, inst, show_boxes=False)
    assert np.array_equal(auto, draw_instances(image, inst, show_boxes=False, show_labels=False))
    assert not np.array_equal(auto, draw_instances(image, inst, show_boxes=False, show_labels=True))


def test_box_only_and_empty_instances():
    image = np.zeros((20, 20, 3), dtype=np.uint8)
    boxes_only = Instances((20, 20), boxes=torch.tensor([[2.0, 2.0, 10.0, 12.0]]), labels=torch.tensor([0]))
    out = draw_instances(image, boxes_only, show_labels=False)
    assert (out[2, 2:10] > 0).any(axis=1).all() and not out[5, 5].any()
    assert np.array_equal(draw_instances(image, Instances.empty((20, 20))), image)


def test_prediction_box_not_enclosing_its_mask_still_fills_the_mask():
    image = np.zeros((20, 20, 3), dtype=np.uint8)
    masks = torch.zeros((1, 20, 20), dtype=torch.bool)
    masks[0, 12:18, 12:18] = True
    inst = Instances((20, 20), boxes=torch.tensor([[0.0, 0.0, 4.0, 4.0]]), masks=masks, scores=torch.tensor([0.5]))
    out = draw_instances(image, inst, show_boxes=False, show_labels=False)
    assert out[12:18, 12:18].any(axis=2).all()


def test_input_checks():
    image, inst = scene()
    with pytest.raises(ValueError, match="size"):
        draw_instances(image[:30], inst)
    with pytest.raises(TypeError, match="uint8"):
        draw_instances(image.astype(np.float32), inst)
    with pytest.raises(TypeError, match="uint8"):
        draw_instances(torch.zeros(3, 40, 60), inst)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="alpha"):
        draw_instances(image, inst, alpha=1.5)
