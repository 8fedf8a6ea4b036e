"""``SpatialEmbeddingLoss``: Lovasz hinge on Gaussian instance probabilities, sigma smoothness and seed regression."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from instseg.ops.instance_maps import instances_to_label_map
from instseg.structures import Instances


def lovasz_hinge(logits: Tensor, labels: Tensor) -> Tensor:
    """Lovasz hinge loss (Berman et al. 2018) of each row: logits Tensor[N, P] (real), labels Tensor[N, P] (0/1).

    Returns Tensor[N]. A convex surrogate of ``1 - IoU`` of the prediction ``logits > 0`` with the labels: the
    hinge errors ``1 - logit * sign`` are sorted in decreasing order and weighted by the gradient of the Lovasz
    extension of the Jaccard loss, i.e. by how much each error, taken in that order, adds to ``1 - IoU``.
    Written here because no maintained library ships it (the authors' reference code is a script, not a package);
    all rows at once: one sort, two cumulative sums.
    """
    labels = labels.to(logits.dtype)
    errors = 1.0 - logits * (2.0 * labels - 1.0)  # [N, P]
    errors_sorted, order = torch.sort(errors, dim=1, descending=True)
    gt_sorted = labels.gather(1, order)
    positives = gt_sorted.sum(1, keepdim=True)  # [N, 1]
    intersection = positives - gt_sorted.cumsum(1)
    union = positives + (1.0 - gt_sorted).cumsum(1)  # > 0: the first position counts a positive or a negative
    jaccard = 1.0 - intersection / union
    grad = torch.cat([jaccard[:, :1], jaccard[:, 1:] - jaccard[:, :-1]], dim=1)  # Lovasz extension weights
    return (torch.relu(errors_sorted) * grad).sum(1)


def instance_probabilities(embedding: Tensor, centres: Tensor, sigmas: Tensor) -> Tensor:
    """Gaussian probability ``exp(-sum_d (e_d - c_d)^2 / (2 sigma_d^2))`` of every pixel for every object.

    embedding Tensor[2, P], centres Tensor[N, 2], sigmas Tensor[N, S] (S = 1 or 2) -> Tensor[N, P].
    """
    sq = (embedding[None] - centres[:, :, None]).pow(2)  # [N, 2, P]
    return torch.exp(-(sq / (2.0 * sigmas.pow(2)[:, :, None])).sum(1))


class SpatialEmbeddingLoss(nn.Module):
    """Losses of the spatial-embedding method, targets built on the fly from ``Instances`` masks.

    For each object k of an image: centre ``C_k`` = the mean of its pixels' coordinates (``center="centroid"``, the
    stabler choice of the authors' code; ``coord_scale`` must be the head's) or of its pixels' embeddings
    (``center="embedding"``, the paper's), ``sigma_k`` = mean predicted sigma over its pixels, and ``phi_k`` = the
    Gaussian of every pixel's embedding around ``C_k`` with bandwidth ``sigma_k`` (``instance_probabilities``).
    Then:
      - ``loss_instance``: ``lovasz_hinge(2 phi_k - 1, mask_k)`` over all pixels, averaged over objects: it
        learns offsets and bandwidth together so that ``phi_k > 0.5`` is exactly object k;
      - ``loss_smooth``: mean over object pixels of ``((sigma_i - sigma_k) / sigma_k)^2``, pulling every pixel's
        sigma to its object's (relative, so it does not depend on the embedding's unit);
      - ``loss_seed``: squared error of the seed map of each object's class to ``phi_k`` (detached) on its pixels
        (``seed_fg_weight`` x) and to 0 elsewhere, over the image's pixels.
    Each term is averaged over images; padding pixels never count. Objects are processed ``chunk_size`` at a time
    (memory ~ ``chunk_size`` x pixels); an image without objects gives zeros that keep the graph.
    """

    def __init__(
        self,
        instance_weight: float = 1.0,
        smooth_weight: float = 10.0,
        seed_weight: float = 1.0,
        seed_fg_weight: float = 10.0,
        center: str = "centroid",
        coord_scale: float = 128.0,
        chunk_size: int = 32,
    ) -> None:
        super().__init__()
        if center not in ("centroid", "embedding"):
            raise ValueError(f"methods/spatial_embedding/loss.py: center must be centroid|embedding, got {center!r}")
        self.instance_weight = instance_weight
        self.smooth_weight = smooth_weight
        self.seed_weight = seed_weight
        self.seed_fg_weight = seed_fg_weight
        self.center = center
        self.coord_scale = coord_scale
        self.chunk_size = max(1, chunk_size)

    def image_terms(
        self, embedding: Tensor, sigma: Tensor, seed: Tensor, label_map: Tensor, classes: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Instance, smoothness and seed terms of one image: embedding Tensor[2, H, W], sigma Tensor[S, H, W],
        seed Tensor[K, H, W], label_map Tensor[H, W] (0 = background) and each id's class ``classes[id - 1]``."""
        # float32 throughout: under mixed precision sigma^2 of a small bandwidth would underflow in half precision
        e = embedding.flatten(1).float()  # [2, P]
        s = sigma.flatten(1).float()  # [S, P]
        seeds = seed.flatten(1).float()  # [K, P]
        flat = label_map.reshape(-1)
        pixels = torch.nonzero(flat > 0).squeeze(1)  # [M] foreground pixels
        seed_target = torch.zeros_like(seeds)
        seed_weight = torch.ones_like(seeds[0])
        zero = (e.sum() + s.sum()) * 0.0
        if pixels.numel() == 0:
            return zero, zero, seeds.pow(2).mean()
        ids, index = torch.unique(flat[pixels], return_inverse=True)  # object index 0..N-1 of each fg pixel
        n = ids.numel()
        counts = torch.zeros(n, device=e.device, dtype=e.dtype).index_add_(0, index, torch.ones_like(e[0, pixels]))
        sig_means = torch.zeros(n, s.shape[0], device=e.device, dtype=e.dtype).index_add_(0, index, s[:, pixels].t())
        sig_means = sig_means / counts[:, None]  # [N, S]
        if self.center == "centroid":
            w = label_map.shape[1]
            coords = torch.stack([pixels // w, pixels % w], 1).to(e.dtype) / self.coord_scale  # [M, 2] as the head
        else:
            coords = e[:, pixels].t()  # [M, 2]
        centres = torch.zeros(n, 2, device=e.device, dtype=e.dtype).index_add_(0, index, coords) / counts[:, None]
        smooth_px = ((s[:, pixels].t() - sig_means.detach()[index]) / sig_means.detach()[index]).pow(2).mean(1)
        smooth = (torch.zeros_like(counts).index_add_(0, index, smooth_px) / counts).mean()

        own_phi = torch.zeros(pixels.numel(), device=e.device, dtype=e.dtype)
        instance_losses = []
        for start in range(0, n, self.chunk_size):
            stop = min(n, start + self.chunk_size)
            phi = instance_probabilities(e, centres[start:stop], sig_means[start:stop])  # [n_chunk, P]
            masks = flat[None] == ids[start:stop, None]  # [n_chunk, P]
            instance_losses.append(lovasz_hinge(2.0 * phi - 1.0, masks))
            inside = (index >= start) & (index < stop)
            own_phi[inside] = phi.detach()[index[inside] - start, pixels[inside]]
        instance = torch.cat(instance_losses).mean()

        seed_target[classes[ids[index] - 1], pixels] = own_phi
        seed_weight[pixels] = self.seed_fg_weight
        seed_loss = ((seeds - seed_target).pow(2) * seed_weight).sum() / seeds.numel()
        return instance, smooth, seed_loss

    def forward(self, outputs: dict[str, Tensor], targets: list[Instances]) -> dict[str, Tensor]:
        embedding = outputs["embedding"]  # [B, 2, H, W]
        if len(targets) != embedding.shape[0]:
            raise ValueError(
                f"methods/spatial_embedding/loss.py: {len(targets)} targets for a batch of {embedding.shape[0]}"
            )
        height, width = embedding.shape[-2:]
        terms = []
        for i, target in enumerate(targets):
            h, w = target.image_size
            if h > height or w > width:
                raise ValueError(
                    f"methods/spatial_embedding/loss.py: target {i} is {h}x{w}, larger than the {height}x{width} batch"
                )
            target = target.to(embedding.device)
            if len(target) > 0 and int(target.labels.max()) >= outputs["seed"].shape[1]:
                raise ValueError(
                    f"methods/spatial_embedding/loss.py: target {i} has label {int(target.labels.max())} but the "
                    f"model has {outputs['seed'].shape[1]} classes"
                )
            if len(target) > 0 and target.masks is None:
                raise ValueError(f"methods/spatial_embedding/loss.py: target {i} has no masks; this method needs them")
            if len(target) > 0:
                label_map = instances_to_label_map(target.masks)  # type: ignore[arg-type]  # checked just above
            else:
                label_map = torch.zeros((h, w), dtype=torch.int64, device=embedding.device)
            terms.append(
                self.image_terms(
                    embedding[i, :, :h, :w],
                    outputs["sigma"][i, :, :h, :w],
                    outputs["seed"][i, :, :h, :w],
                    label_map,
                    target.labels.long(),
                )
            )
        return {
            "loss_instance": self.instance_weight * torch.stack([t[0] for t in terms]).mean(),
            "loss_smooth": self.smooth_weight * torch.stack([t[1] for t in terms]).mean(),
            "loss_seed": self.seed_weight * torch.stack([t[2] for t in terms]).mean(),
        }
