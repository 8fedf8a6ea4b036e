"""``EmbeddingLoss``: discriminative loss on pixel embeddings (De Brabandere et al. 2017) + foreground/seed BCE."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from instseg.ops.instance_maps import batch_class_maps, batch_distance_maps, batch_label_maps
from instseg.structures import Instances


def discriminative_loss(
    embedding: Tensor,
    label_map: Tensor,
    delta_v: float = 0.5,
    delta_d: float = 1.5,
) -> tuple[Tensor, Tensor, Tensor]:
    """Variance, distance and regularisation terms for one image: embedding Tensor[E, H, W], label_map Tensor[H, W].

    variance: mean over objects of mean over their pixels of ``relu(|mu_c - x_i| - delta_v)^2`` (pulls pixels
    to within ``delta_v`` of their object's mean); distance: mean over ordered pairs of objects of
    ``relu(2 delta_d - |mu_a - mu_b|)^2`` (pushes means at least ``2 delta_d`` apart); regularisation: mean
    ``|mu_c|`` (keeps the means near the origin). Background pixels (id 0) take no part. All objects at once
    with ``index_add``; an image without objects gives three zeros that keep the graph.
    """
    e = embedding.flatten(1).t()  # [P, E]
    flat = label_map.reshape(-1)
    fg = flat > 0
    zero = embedding.sum() * 0.0
    if not bool(fg.any()):
        return zero, zero, zero
    ids, index = torch.unique(flat[fg], return_inverse=True)  # contiguous object index per foreground pixel
    n = ids.numel()
    x = e[fg]  # [M, E]
    counts = torch.zeros(n, device=e.device, dtype=e.dtype).index_add_(0, index, torch.ones_like(x[:, 0]))
    means = torch.zeros(n, e.shape[1], device=e.device, dtype=e.dtype).index_add_(0, index, x) / counts[:, None]
    # sqrt(. + eps): the gradient of a norm is undefined at 0
    spread = ((x - means[index]).pow(2).sum(1) + 1e-8).sqrt()  # [M]
    pull = F.relu(spread - delta_v).pow(2)
    variance = (torch.zeros_like(counts).index_add_(0, index, pull) / counts).mean()
    regularisation = (means.pow(2).sum(1) + 1e-8).sqrt().mean()
    if n < 2:
        return variance, zero, regularisation
    gaps = ((means[:, None] - means[None]).pow(2).sum(-1) + 1e-8).sqrt()  # [N, N]
    off_diagonal = ~torch.eye(n, dtype=torch.bool, device=e.device)
    distance = F.relu(2.0 * delta_d - gaps[off_diagonal]).pow(2).mean()
    return variance, distance, regularisation


class EmbeddingLoss(nn.Module):
    """Losses of the embedding method, targets built on the fly from ``Instances`` masks.

    - ``loss_embedding``: ``discriminative_loss`` averaged over images (variance + distance + 0.001 x reg.);
    - ``loss_fg``: BCE between ``fg_logits`` and the union of the masks;
    - ``loss_seed``: BCE between ``seed_logits`` and the per-object normalised distance transform (a soft
      target peaking at 1 in each object's centre), so that clustering starts from central pixels whose
      embeddings lie closest to their object's mean;
    - ``loss_class``: per-pixel cross-entropy on foreground pixels (only with ``class_logits``).
    Padding pixels of the batch never count.
    """

    def __init__(
        self,
        delta_v: float = 0.5,
        delta_d: float = 1.5,
        embedding_weight: float = 1.0,
        fg_weight: float = 1.0,
        seed_weight: float = 1.0,
        class_weight: float = 1.0,
        regularisation_weight: float = 0.001,
    ) -> None:
        super().__init__()
        if not 0 < delta_v < delta_d:
            raise ValueError(f"methods/embedding/loss.py: need 0 < delta_v < delta_d, got {delta_v}, {delta_d}")
        self.delta_v = delta_v
        self.delta_d = delta_d
        self.embedding_weight = embedding_weight
        self.fg_weight = fg_weight
        self.seed_weight = seed_weight
        self.class_weight = class_weight
        self.regularisation_weight = regularisation_weight

    def forward(self, outputs: dict[str, Tensor], targets: list[Instances]) -> dict[str, Tensor]:
        embedding = outputs["embedding"]  # [B, E, H, W]
        if len(targets) != embedding.shape[0]:
            raise ValueError(f"methods/embedding/loss.py: {len(targets)} targets for a batch of {embedding.shape[0]}")
        label_maps, valid_maps = batch_label_maps([t.to(embedding.device) for t in targets], embedding.shape[-2:])
        valid = valid_maps.unsqueeze(1).float()  # [B, 1, H, W]
        n_valid = valid.sum().clamp(min=1.0)

        terms = [
            discriminative_loss(e, m, self.delta_v, self.delta_d) for e, m in zip(embedding, label_maps, strict=True)
        ]
        variance = torch.stack([t[0] for t in terms]).mean()
        distance = torch.stack([t[1] for t in terms]).mean()
        regularisation = torch.stack([t[2] for t in terms]).mean()
        loss_embedding = variance + distance + self.regularisation_weight * regularisation

        fg = (label_maps > 0).unsqueeze(1).float()
        bce_fg = F.binary_cross_entropy_with_logits(outputs["fg_logits"], fg, reduction="none")
        seed_target = batch_distance_maps(label_maps).unsqueeze(1)  # [B, 1, H, W] in [0, 1]
        bce_seed = F.binary_cross_entropy_with_logits(outputs["seed_logits"], seed_target, reduction="none")
        losses = {
            "loss_embedding": self.embedding_weight * loss_embedding,
            "loss_fg": self.fg_weight * (bce_fg * valid).sum() / n_valid,
            "loss_seed": self.seed_weight * (bce_seed * valid).sum() / n_valid,
        }
        if "class_logits" in outputs:
            classes = batch_class_maps(label_maps, valid_maps, targets)  # [B, H, W], -100 = ignore
            ce = F.cross_entropy(outputs["class_logits"], classes, ignore_index=-100, reduction="sum")
            losses["loss_class"] = self.class_weight * ce / (classes >= 0).sum().clamp(min=1)
        return losses
