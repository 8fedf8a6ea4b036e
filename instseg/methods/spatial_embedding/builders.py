"""Registered spatial-embedding models: ``spatial_embedding_unet`` (from scratch) and ``spatial_embedding_resnet18``."""

from __future__ import annotations

from torch import nn

from instseg.methods.dense_segmenter import build_on_backbone_unet, input_normalization
from instseg.methods.spatial_embedding.head import SpatialEmbeddingHead
from instseg.methods.spatial_embedding.loss import SpatialEmbeddingLoss
from instseg.methods.spatial_embedding.model import SpatialEmbeddingSegmenter
from instseg.methods.spatial_embedding.postprocess import SpatialEmbeddingPostprocessor
from instseg.necks.unet import SmallUNet
from instseg.registry import register_model


def build_spatial_embedding(
    network: nn.Module,
    num_classes: int = 1,
    min_size: int | None = None,
    max_size: int | None = None,
    imagenet_normalization: bool = False,
    norm: str = "bn",
    sigma_dims: int = 2,
    coord_scale: float = 128.0,
    sigma_init: float = 8.0,
    center: str = "centroid",
    instance_weight: float = 1.0,
    smooth_weight: float = 10.0,
    seed_weight: float = 1.0,
    fg_threshold: float = 0.5,
    seed_threshold: float = 0.7,
    min_area: int = 8,
    per_image_normalization: bool = True,
) -> SpatialEmbeddingSegmenter:
    """Assemble a ``SpatialEmbeddingSegmenter`` around ``network`` (any module with an ``out_channels`` attribute).

    ``coord_scale`` (pixels per embedding unit, hence the farthest an offset reaches) goes to the head and the loss;
    ``sigma_init`` is the starting bandwidth in pixels. ``imagenet_normalization`` (for ImageNet-pretrained
    networks) normalises with ImageNet statistics; otherwise the microscopy rule applies (per-image 1..99.8
    percentile normalisation, see
    ``instseg.methods.dense_segmenter.input_normalization``) unless ``per_image_normalization=False``.
    """
    head = SpatialEmbeddingHead(
        int(network.out_channels),  # type: ignore[arg-type]
        num_classes,
        sigma_dims,
        norm=norm,
        coord_scale=coord_scale,
        sigma_init=sigma_init,
    )
    criterion = SpatialEmbeddingLoss(
        instance_weight, smooth_weight, seed_weight, center=center, coord_scale=coord_scale
    )
    return SpatialEmbeddingSegmenter(
        network,
        head,
        criterion,
        SpatialEmbeddingPostprocessor(fg_threshold, seed_threshold, min_area),
        num_classes=num_classes,
        **input_normalization(imagenet_normalization, per_image_normalization)._asdict(),
        min_size=min_size,
        max_size=max_size,
    )


@register_model
def spatial_embedding_unet(
    num_classes: int = 1,
    min_size: int | None = None,
    max_size: int | None = None,
    base_channels: int = 32,
    depth: int = 4,
    norm: str = "bn",
    **options: float | int | str | bool,
) -> SpatialEmbeddingSegmenter:
    """Spatial embeddings on a U-Net trained from scratch (``depth`` poolings, widths ``base_channels * 2**i``).

    Native resolution by default (``min_size``/``max_size`` None); ``options`` go to ``build_spatial_embedding``
    (``sigma_dims``, ``coord_scale``, ``sigma_init``, ``center``, loss weights, thresholds, ``min_area``).
    """
    network = SmallUNet(3, base_channels, depth, norm)
    return build_spatial_embedding(network, num_classes, min_size, max_size, norm=norm, **options)  # type: ignore[arg-type]


@register_model
def spatial_embedding_resnet18(
    num_classes: int = 1,
    min_size: int | None = None,
    max_size: int | None = None,
    pretrained_backbone: bool = False,
    **options: float | int | str | bool,
) -> SpatialEmbeddingSegmenter:
    """Spatial embeddings on a ResNet-18 U-Net (ImageNet weights downloaded by torchvision only if
    ``pretrained_backbone``, which also picks ImageNet normalisation unless ``imagenet_normalization`` is given)."""
    return build_on_backbone_unet(
        build_spatial_embedding, "resnet18", num_classes, min_size, max_size, pretrained_backbone, options
    )
