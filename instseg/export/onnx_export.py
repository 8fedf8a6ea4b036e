"""``to_onnx``: any registered model -> one ONNX file whose outputs are final instances (or, for the bottom-up
models, the per-pixel maps their numpy grouping step takes), with the class names and input rule in its metadata."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import torch

from instseg.export.blendmask_graph import BlendMaskGraph
from instseg.export.centermask_graph import CenterMaskGraph
from instseg.export.condinst_graph import CondInstGraph
from instseg.export.deform_symbolic import register_deform_conv
from instseg.export.dense_graph import DenseGraph
from instseg.export.graph_io import INPUT_NAMES, ExportGraph
from instseg.export.mask_rcnn_graph import MaskRCNNGraph
from instseg.export.polarmask_graph import PolarMaskGraph
from instseg.export.solov2_graph import SOLOv2Graph
from instseg.export.star_convex_graph import StarConvexGraph
from instseg.export.yolact_graph import YolactGraph
from instseg.methods.blendmask import BlendMask
from instseg.methods.centermask import CenterMask
from instseg.methods.condinst import CondInst
from instseg.methods.embedding import EmbeddingSegmenter
from instseg.methods.polarmask import PolarMask
from instseg.methods.segmenter import InstanceSegmenter
from instseg.methods.solov2 import SOLOv2
from instseg.methods.spatial_embedding import SpatialEmbeddingSegmenter
from instseg.methods.star_convex import StarConvexSegmenter
from instseg.methods.two_stage_segmenter import TwoStageSegmenter
from instseg.methods.watershed import WatershedSegmenter
from instseg.methods.yolact import Yolact
from instseg.ops.resize import resized_shape

FORMAT_VERSION = "2"  # 2: a batch dimension on the image and the maps, and batch_index for detections
DEFAULT_OPSET = 18
# deformable convolutions (YOLACT++) exist in ONNX from opset 19
DEFORMABLE_OPSET = 19
DENSE_FAMILIES: list[tuple[type[InstanceSegmenter], str]] = [
    (WatershedSegmenter, "watershed"),
    (EmbeddingSegmenter, "embedding"),
    (SpatialEmbeddingSegmenter, "spatial_embedding"),
]


def export_graph(model: InstanceSegmenter) -> ExportGraph:
    """The tensor-only wrapper of ``model`` (eval mode) that ``to_onnx`` traces."""
    model.eval()
    if isinstance(model, Yolact):
        return YolactGraph(model)
    if isinstance(model, SOLOv2):
        return SOLOv2Graph(model)
    if isinstance(model, TwoStageSegmenter):
        return MaskRCNNGraph(model)
    if isinstance(model, CenterMask):
        return CenterMaskGraph(model)
    if isinstance(model, CondInst):
        return CondInstGraph(model)
    if isinstance(model, BlendMask):
        return BlendMaskGraph(model)
    if isinstance(model, PolarMask):
        return PolarMaskGraph(model)
    if isinstance(model, StarConvexSegmenter):
        return StarConvexGraph(model)
    for cls, family in DENSE_FAMILIES:
        if isinstance(model, cls):
            with_classes = family != "spatial_embedding" and model.num_classes > 1
            return DenseGraph(model, family, with_classes)
    raise TypeError(f"no ONNX export for models of type {type(model).__name__}")


def needed_opset(model: InstanceSegmenter) -> int:
    """The lowest opset ``to_onnx`` can write ``model`` with (deformable convolutions need 19)."""
    from torchvision.ops import DeformConv2d as TorchvisionDeformConv

    from instseg.methods.yolact.deform import DeformConv2d

    deformable = any(isinstance(m, (DeformConv2d, TorchvisionDeformConv)) for m in model.modules())
    return DEFORMABLE_OPSET if deformable else 11


def input_rule(model: InstanceSegmenter) -> dict[str, Any]:
    """What a runtime must do before the graph (resize) and what the graph does itself, for the metadata."""
    return {
        "min_size": model.min_size,
        "max_size": model.max_size,
        "resize": "antialiased bilinear, short side to min_size, long side at most max_size (before the graph)",
        "size_divisibility": model.size_divisibility,
        "pixel_mean": [float(v) for v in model.pixel_mean.flatten()],
        "pixel_std": [float(v) for v in model.pixel_std.flatten()],
        "percentiles": list(getattr(model, "percentiles", None) or []) or None,
        "channels": "RGB, raw 0..255 (float32); padding, normalisation and percentiles inside the graph",
    }


def example_input(
    model: InstanceSegmenter, size: tuple[int, int] = (96, 128), batch: int = 1
) -> tuple[torch.Tensor, torch.Tensor]:
    """A traced example: ``batch`` images of original ``size`` resized by the model's rule, and that original
    size."""
    h, w = resized_shape(size[0], size[1], model.min_size, model.max_size)
    g = torch.Generator().manual_seed(0)
    image = torch.rand(batch, 3, h, w, generator=g) * 255
    return image, torch.tensor(size, dtype=torch.int64)


def to_onnx(
    model: InstanceSegmenter,
    path: str | Path,
    opset: int | None = None,
    dynamic: bool = True,
    example_size: tuple[int, int] = (96, 128),
) -> Path:
    """Write ``model`` as an ONNX file at ``path`` (returned); see ``instseg/export/README.md`` for its layout.

    ``dynamic`` leaves the batch size and the images' height and width free (any number of images of one size per
    run; Mask R-CNN keeps one image per run); without it the graph takes one image per run, whose resized size must
    be that of ``example_size``. ``opset`` defaults to 18 (19 for deformable convolutions). Uses the
    TorchScript-based exporter (``dynamo=False``): it keeps the data-dependent detection counts as dynamic sizes.
    """
    import onnx

    path = Path(path)
    if path.suffix != ".onnx":
        raise ValueError(f"{path}: the exported file name must end in .onnx")
    opset = opset if opset is not None else max(DEFAULT_OPSET, needed_opset(model))
    if opset < needed_opset(model):
        raise ValueError(f"opset {opset} is too low for this model: it needs opset >= {needed_opset(model)}")
    if opset >= DEFORMABLE_OPSET:
        register_deform_conv()
    was_training = model.training
    graph = export_graph(model).eval()
    batched = dynamic and graph.batchable
    # traced with two images where the batch is free, so that nothing specialises on a batch of one
    image, original = example_input(model, example_size, batch=2 if batched else 1)
    axes: dict[str, dict[int, str]] = {}
    if dynamic:
        axes["image"] = {0: "batch", 2: "height", 3: "width"} if batched else {2: "height", 3: "width"}
        axes["original_size"] = {}
    with torch.no_grad():
        ranks = [out.dim() for out in graph(image, original)]  # the exporter needs non-negative axes
    for name, rank in zip(graph.output_names, ranks, strict=True):
        if graph.family in ("detector", "polygons"):
            axes[name] = {0: "detections"}
            if name == "masks":
                axes[name] |= {1: "original_height", 2: "original_width"}
        elif dynamic:
            axes[name] = {rank - 2: "original_height", rank - 1: "original_width"}
            if batched:
                axes[name][0] = "batch"
    path.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about Python values: the wrappers keep sizes traced
        torch.onnx.export(
            graph,
            (image, original),
            str(path),
            input_names=INPUT_NAMES,
            output_names=graph.output_names,
            dynamic_axes=axes,
            opset_version=opset,
            dynamo=False,
        )
    model.train(was_training)  # the exporter restores the wrapper's mode, which would set the model's
    proto = onnx.load(str(path))
    metadata = export_metadata(model, graph, dynamic, (int(image.shape[-2]), int(image.shape[-1])), batched)
    del proto.metadata_props[:]
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(proto, str(path))
    return path


def export_metadata(
    model: InstanceSegmenter, graph: ExportGraph, dynamic: bool, traced_size: tuple[int, int], batched: bool
) -> dict[str, str]:
    """The file's ``metadata_props`` (JSON strings): format, family, class names, input rule, batch, grouping."""
    names = list(getattr(model, "class_names", None) or [f"class_{i}" for i in range(model.num_classes)])
    rule = input_rule(model)
    rule["static_size"] = None if dynamic else list(traced_size)
    return {
        "instseg_format": FORMAT_VERSION,
        "instseg_family": graph.family,
        "class_names": json.dumps(names),
        "category_ids": json.dumps(list(getattr(model, "category_ids", None) or []) or None),
        "input_rule": json.dumps(rule),
        "batch": json.dumps("dynamic" if batched else 1),
        "grouping": json.dumps(graph.grouping_params()),
        "outputs": json.dumps(graph.output_names),
        "model_type": type(model).__name__,
    }
