"""Registered embedding models: ``embedding_unet`` (from scratch) and ``embedding_resnet18``."""

from __future__ import annotations

from torch import nn

from instseg.methods.dense_segmenter import build_on_backbone_unet, input_normalization
from instseg.methods.embedding.head import EmbeddingHead
from instseg.methods.embedding.loss import EmbeddingLoss
from instseg.methods.embedding.model import EmbeddingSegmenter
from instseg.methods.embedding.postprocess import EmbeddingPostprocessor
from instseg.necks.unet import SmallUNet
from instseg.registry import register_model


def build_embedding(
    network: nn.Module,
    num_classes: int = 1,
    min_size: int | None = None,
    max_size: int | None = None,
    imagenet_normalization: bool = False,
    norm: str = "bn",
    embedding_dim: int = 8,
    coord_scale: float | None = 32.0,
    delta_v: float = 0.5,
    delta_d: float = 1.5,
    fg_threshold: float = 0.5,
    seed_threshold: float = 0.3,
    margin: float | None = None,
    min_area: int = 8,
    score_threshold: float = 0.5,
    per_image_normalization: bool = True,
) -> EmbeddingSegmenter:
    """Assemble an ``EmbeddingSegmenter`` around ``network`` (any module with an ``out_channels`` attribute).

    ``margin`` (clustering radius in embedding space) defaults to ``delta_d``; ``coord_scale`` (pixels per unit of
    the coordinate channels, None for none) goes to ``EmbeddingHead``. ``imagenet_normalization``
    (for ImageNet-pretrained networks) normalises with ImageNet statistics; otherwise the microscopy rule applies
    (per-image 1..99.8 percentile normalisation, see ``instseg.methods.dense_segmenter.input_normalization``)
    unless ``per_image_normalization=False``.
    """
    head = EmbeddingHead(int(network.out_channels), embedding_dim, num_classes, norm=norm, coord_scale=coord_scale)  # type: ignore[arg-type]
    post = EmbeddingPostprocessor(
        fg_threshold, seed_threshold, margin if margin is not None else delta_d, min_area, score_threshold
    )
    return EmbeddingSegmenter(
        network,
        head,
        EmbeddingLoss(delta_v, delta_d),
        post,
        num_classes=num_classes,
        **input_normalization(imagenet_normalization, per_image_normalization)._asdict(),
        min_size=min_size,
        max_size=max_size,
    )


@register_model
def embedding_unet(
    num_classes: int = 1,
    min_size: int | None = None,
    max_size: int | None = None,
    base_channels: int = 32,
    depth: int = 4,
    norm: str = "bn",
    **options: float | int | str | bool | None,
) -> EmbeddingSegmenter:
    """Pixel embeddings on a U-Net trained from scratch (``depth`` poolings, widths ``base_channels * 2**i``).

    Native resolution by default (``min_size``/``max_size`` None); ``options`` go to ``build_embedding``
    (``embedding_dim``, ``coord_scale``, ``delta_v``, ``delta_d``, thresholds, ``margin``, ``min_area``).
    """
    network = SmallUNet(3, base_channels, depth, norm)
    return build_embedding(network, num_classes, min_size, max_size, norm=norm, **options)  # type: ignore[arg-type]


@register_model
def embedding_resnet18(
    num_classes: int = 1,
    min_size: int | None = None,
    max_size: int | None = None,
    pretrained_backbone: bool = False,
    **options: float | int | str | bool | None,
) -> EmbeddingSegmenter:
    """Pixel embeddings on a ResNet-18 U-Net (ImageNet weights downloaded by torchvision only if
    ``pretrained_backbone``, which also picks ImageNet normalisation unless ``imagenet_normalization`` is given)."""
    return build_on_backbone_unet(
        build_embedding, "resnet18", num_classes, min_size, max_size, pretrained_backbone, options
    )
