"""Shared pieces of the export tests: small fixed-seed models that detect something, test images, comparisons."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

import instseg
from instseg.methods.segmenter import InstanceSegmenter

NUM_CLASSES = 2
MODEL_NAMES = [name for name in instseg.list_models() if not name.endswith("_test")]
# small inputs keep the whole parity file fast; two image sizes exercise the dynamic height and width
SIZES = ((128, 160), (96, 128))
DENSE_TYPES = ("WatershedSegmenter", "EmbeddingSegmenter", "SpatialEmbeddingSegmenter", "StarConvexSegmenter")


def build(name: str) -> InstanceSegmenter:
    """``name`` with fixed-seed random weights, resized to at most 128 x 160, post-processing thresholds lowered
    so that random weights still give detections (the dense models' thresholds are set per image:
    ``dense_thresholds``)."""
    torch.manual_seed(0)
    model = instseg.create_model(name, num_classes=NUM_CLASSES, min_size=128, max_size=160)
    model.eval()
    post = getattr(model, "postprocessor", None)
    kind = type(model).__name__
    # random heads give near-tied class scores (which any NMS may order either way) and mask probabilities near
    # the 0.5 threshold; spreading the former and sharpening the latter (two-stage and prototype masks) makes the
    # comparison decisive, and a mask threshold of 0.45 keeps pixels where ReLU-dead features give exactly
    # sigmoid(0) = 0.5 off the threshold
    with torch.no_grad():
        if kind == "Yolact":
            post.score_threshold, post.mask_threshold = 1e-3, 0.45
            _scale(model.head.cls, 0.1)
            _scale(model.protonet.predict, 20.0)
        elif kind == "SOLOv2":
            post.score_threshold, post.update_threshold, post.mask_threshold = 0.01, 0.0, 0.45
        elif kind in ("CondInst", "BlendMask", "PolarMask"):
            post.selector.score_threshold = 0.005
            if hasattr(post, "mask_threshold"):
                post.mask_threshold = 0.45
            model.head.cls.weight.mul_(50.0)  # type: ignore[operator]  # spread the prior-tied class scores
        elif kind == "CenterMask":
            model.selector.score_threshold, model.mask_threshold = 0.005, 0.45
            model.head.cls.weight.mul_(50.0)  # type: ignore[operator]
            _scale(model.mask_head.logits, 20.0)
        elif kind == "MaskRCNN":
            model.roi_heads.score_thresh, model.mask_threshold = 0.0, 0.45
            _scale(model.roi_heads.mask_predictor.mask_fcn_logits, 20.0)
        elif kind == "CascadeMaskRCNN":
            model.roi_heads.score_thresh, model.mask_threshold = 0.0, 0.45
            _scale(model.roi_heads.mask_predictor.mask_fcn_logits, 20.0)
            _spread_stage_scores(model)
        elif kind == "PANet":
            model.roi_heads.score_thresh, model.mask_threshold = 0.0, 0.45
            _scale(model.roi_heads.mask_head.logits, 20.0)
            _scale(model.roi_heads.mask_head.fc, 20.0)
        elif kind == "HybridTaskCascade":
            model.roi_heads.score_thresh, model.mask_threshold = 0.0, 0.45
            for head in model.roi_heads.mask_head:
                _scale(head.logits, 20.0)
            _spread_stage_scores(model)
    return model


def _spread_stage_scores(model: torch.nn.Module) -> None:
    """Random deep box heads can end in all-zero (ReLU-dead) features: every class then scores exactly 1 / (K + 1),
    and NMS and the top-k may keep any of the tied regions. Distinct classifier biases and larger weights break
    the ties as a trained model's scores would."""
    g = torch.Generator().manual_seed(0)
    for stage in model.roi_heads.stages:  # type: ignore[union-attr]
        _scale(stage.cls_score, 20.0)
        stage.cls_score.bias.add_(torch.randn(stage.cls_score.bias.shape, generator=g))


def _scale(conv: torch.nn.Module, factor: float) -> None:
    conv.weight.mul_(factor)  # type: ignore[operator]
    if conv.bias is not None:  # type: ignore[union-attr]
        conv.bias.mul_(factor)  # type: ignore[union-attr, operator]


def sample_image(shape: tuple[int, int], seed: int) -> np.ndarray:
    """A noisy uint8 RGB image [H, W, 3] with a few bright discs."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 200, (*shape, 3)).astype(np.uint8)  # textured everywhere: no tied scores
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    for _ in range(6):
        cy, cx, r = rng.integers(10, shape[0] - 10), rng.integers(10, shape[1] - 10), rng.integers(5, 15)
        image[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = 220
    return image


def eager_maps(model: InstanceSegmenter, image: np.ndarray, names: list[str]) -> dict[str, np.ndarray]:
    """A dense model's maps at the image's size computed by PyTorch as its post-processor does before grouping:
    cropped to the image, activated, resized bilinearly (the oracle of the exported maps)."""
    tensor = torch.from_numpy(image).permute(2, 0, 1)
    batch = model.preprocess([tensor])
    with torch.no_grad():
        outputs = model(batch)
    if type(model).__name__ == "StarConvexSegmenter":  # resamples its maps itself (ray lengths scale with the image)
        return model.postprocessor.original_maps(outputs, 0, batch)  # type: ignore[union-attr, operator]
    (h, w), original = batch.image_sizes[0], batch.original_sizes[0]
    sources = {
        "fg_prob": ("fg_logits", "sigmoid"),
        "distance": ("distance", None),
        "seed_prob": ("seed_logits", "sigmoid"),
        "embedding": ("embedding", None),
        "sigma": ("sigma", None),
        "seed": ("seed", None),
        "class_prob": ("class_logits", "softmax"),
    }
    out = {}
    for name in names:
        key, activation = sources[name]
        x = outputs[key][0, :, :h, :w].float()
        x = x.sigmoid() if activation == "sigmoid" else x.softmax(0) if activation == "softmax" else x
        if (h, w) != tuple(original):
            x = F.interpolate(x[None], size=tuple(original), mode="bilinear", align_corners=False)[0]
        out[name] = (x[0] if name in ("fg_prob", "distance", "seed_prob") else x).numpy()
    return out


def dense_thresholds(kind: str, maps: dict[str, np.ndarray]) -> dict[str, float]:
    """Grouping thresholds at quantiles of this image's maps: random weights give nearly flat maps, so fixed
    thresholds would find all or nothing."""
    if kind == "WatershedSegmenter":
        fg, distance = maps["fg_prob"], maps["distance"]
        return {
            "fg_threshold": float(np.quantile(fg, 0.5)),
            "seed_threshold": float(np.quantile(distance[fg > np.quantile(fg, 0.5)], 0.7)),
            "score_threshold": 0.0,
            "min_area": 4,
        }
    if kind == "StarConvexSegmenter":  # about 2% of the pixels are candidates
        return {"prob_threshold": float(np.quantile(maps["prob"], 0.98)), "min_area": 2}
    if kind == "EmbeddingSegmenter":
        return {
            "fg_threshold": float(np.quantile(maps["fg_prob"], 0.5)),
            "seed_threshold": float(np.quantile(maps["seed_prob"], 0.9)),
            "score_threshold": 0.0,
            "min_area": 4,
        }
    seed = maps["seed"].max(0)
    return {
        "fg_threshold": float(np.quantile(seed, 0.5)),
        "seed_threshold": float(np.quantile(seed, 0.9)),
        "min_area": 4,
    }


def mask_ious(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-instance IoU [N] of bool masks [N, H, W] (1 where both are empty)."""
    inter = (a & b).sum((1, 2))
    union = (a | b).sum((1, 2))
    return np.where(union > 0, inter / np.maximum(union, 1), 1.0)


def assert_same_instances(
    ref: instseg.Instances, boxes: np.ndarray, labels: np.ndarray, scores: np.ndarray, masks: np.ndarray, what: str
) -> None:
    """ONNX instances match PyTorch's one to one: same count; each PyTorch instance has its own ONNX instance of
    the same label with boxes within 1 px, score within 1e-4 and mask IoU >= 0.99. Matched by mask IoU rather
    than by position, because candidates of (nearly) equal score may come in either order."""
    assert len(ref) == boxes.shape[0], f"{what}: {len(ref)} PyTorch instances, {boxes.shape[0]} ONNX"
    assert masks.shape == tuple(ref.masks.shape), what  # type: ignore[union-attr]
    if len(ref) == 0:
        return
    ref_masks = ref.masks.numpy().reshape(len(ref), -1).astype(np.float32)  # type: ignore[union-attr]
    onnx_masks = masks.reshape(len(ref), -1).astype(np.float32)
    inter = ref_masks @ onnx_masks.T
    union = ref_masks.sum(1)[:, None] + onnx_masks.sum(1)[None, :] - inter
    iou = np.where(union > 0, inter / np.maximum(union, 1), 1.0)
    ok = (
        (iou >= 0.99)
        & (ref.labels.numpy()[:, None] == labels[None, :])
        & (np.abs(ref.boxes.numpy()[:, None, :] - boxes[None, :, :]).max(2) <= 1.0)
        & (np.abs(ref.scores.numpy()[:, None] - scores[None, :]) <= 1e-4)  # type: ignore[union-attr]
    )
    taken = np.zeros(len(ref), bool)
    for i in np.argsort(ok.sum(1)):  # the instances with fewest candidates first
        candidates = np.flatnonzero(ok[i] & ~taken)
        if not candidates.size:
            best = int(np.argmax(iou[i]))
            raise AssertionError(
                f"{what}: PyTorch instance {i} has no matching ONNX instance (closest by mask: IoU {iou[i, best]:.3f}, "
                f"label {ref.labels[i]} / {labels[best]}, score {float(ref.scores[i]):.5f} / {scores[best]:.5f}, "  # type: ignore[index]
                f"box gap {np.abs(ref.boxes.numpy()[i] - boxes[best]).max():.2f} px)"
            )
        taken[candidates[np.argmax(iou[i, candidates])]] = True
