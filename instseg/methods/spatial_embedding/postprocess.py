"""``SpatialEmbeddingPostprocessor``: seed-by-seed clustering of spatial embeddings with the predicted bandwidths."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from instseg.ops.instance_maps import label_map_to_instances
from instseg.structures import ImageBatch, Instances


class SpatialEmbeddingPostprocessor:
    """Turn ``embedding`` / ``sigma`` / ``seed`` maps into ``Instances`` at the original image size.

    The maps are cropped to each image's valid region and upsampled bilinearly to its original size first (the
    embedding and sigma share one unit, so clustering is unchanged by the resize) and ``min_area`` counts original
    pixels. Clustering (``cluster``) follows Neven et al. 2019:
      1. foreground = pixels whose highest class seed exceeds ``fg_threshold``; all start unclustered;
      2. take the unclustered foreground pixel of highest seed; stop when it is below ``seed_threshold``;
      3. its embedding is the centre and its sigma the bandwidth: ``phi`` = the Gaussian of every foreground
         pixel's embedding around it, the proposal = ``phi > 0.5`` (one tensor operation over all pixels);
      4. accept the unclustered part of the proposal as an object if it has at least ``min_area`` pixels and is
         more than ``min_unclustered`` of the proposal (else it mostly repeats an object already found);
         either way the proposal's pixels are clustered.
    The loop runs once per proposal (at most ``max_proposals``, and stops after ``max_instances`` objects), never
    per pixel. Score = the seed value of the object's seed pixel; label = the class whose seed map fired there.
    """

    def __init__(
        self,
        fg_threshold: float = 0.5,
        seed_threshold: float = 0.7,
        min_area: int = 8,
        min_unclustered: float = 0.5,
        max_instances: int = 1000,
        max_proposals: int = 4000,
    ) -> None:
        if not 0.0 <= fg_threshold <= 1.0 or not 0.0 <= seed_threshold <= 1.0:
            raise ValueError(
                f"methods/spatial_embedding/postprocess.py: thresholds must lie in [0, 1], got {fg_threshold}, "
                f"{seed_threshold}"
            )
        self.fg_threshold = fg_threshold
        self.seed_threshold = seed_threshold
        self.min_area = max(1, min_area)
        self.min_unclustered = min_unclustered
        self.max_instances = max_instances
        self.max_proposals = max_proposals

    def cluster(self, embedding: Tensor, sigma: Tensor, seed: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Label map Tensor[H, W] int64 (0 = background, ids 1..N), scores Tensor[N] and labels Tensor[N] int64 of
        embedding Tensor[2, H, W], sigma Tensor[S, H, W] and seed Tensor[K, H, W]; object ``i`` has id ``i + 1``."""
        h, w = seed.shape[-2:]
        device = seed.device
        labels = torch.zeros(h * w, dtype=torch.int64, device=device)
        seed_max, seed_class = seed.reshape(seed.shape[0], -1).max(0)  # [H * W]
        pixels = torch.nonzero(seed_max > self.fg_threshold).squeeze(1)  # [P] foreground pixels
        e = embedding.reshape(2, -1)[:, pixels].t().contiguous()  # [P, 2]
        inv_two_var = 0.5 / sigma.reshape(sigma.shape[0], -1)[:, pixels].t().pow(2).clamp(min=1e-12)  # [P, S]
        candidates = seed_max[pixels].clone()  # [P]; -1 once a pixel is clustered
        assigned = torch.zeros_like(pixels)
        scores: list[float] = []
        classes: list[int] = []
        for _ in range(self.max_proposals if pixels.numel() else 0):
            i = int(candidates.argmax())
            score = float(candidates[i])
            if score < self.seed_threshold:
                break
            phi = torch.exp(-((e - e[i]).pow(2) * inv_two_var[i]).sum(1))  # [P]
            proposal = phi > 0.5
            proposal[i] = True
            new = proposal & (candidates >= 0)
            n_new = int(new.sum())
            if n_new >= self.min_area and n_new > self.min_unclustered * int(proposal.sum()):
                scores.append(score)
                classes.append(int(seed_class[pixels[i]]))
                assigned[new] = len(scores)
            candidates[proposal] = -1.0
            if len(scores) >= self.max_instances:
                break
        labels[pixels] = assigned
        return (
            labels.view(h, w),
            torch.tensor(scores, dtype=torch.float32, device=device),
            torch.tensor(classes, dtype=torch.int64, device=device),
        )

    def __call__(self, outputs: dict[str, Tensor], images: ImageBatch) -> list[Instances]:
        results = []
        s = outputs["sigma"].shape[1]
        for i, ((h, w), original) in enumerate(zip(images.image_sizes, images.original_sizes, strict=True)):
            maps = [outputs["embedding"][i, :, :h, :w], outputs["sigma"][i, :, :h, :w], outputs["seed"][i, :, :h, :w]]
            stacked = torch.cat(maps).detach().float()[None]  # [1, 2 + S + K, h, w]
            if (h, w) != tuple(original):
                stacked = F.interpolate(stacked, size=tuple(original), mode="bilinear", align_corners=False)
            label_map, scores, labels = self.cluster(stacked[0, :2], stacked[0, 2 : 2 + s], stacked[0, 2 + s :])
            compact = label_map_to_instances(label_map.cpu(), scores=scores.cpu(), labels=labels.cpu(), compact=True)
            results.append(compact)  # masks cropped to their boxes: memory of the objects, not N x H x W
        return results
