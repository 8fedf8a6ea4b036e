"""``SpatialEmbeddingPostprocessor``: seed-by-seed clustering of spatial embeddings with the predicted bandwidths."""

from __future__ import annotations

import math

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
        embedding Tensor[2, H, W], sigma Tensor[S, H, W] and seed Tensor[K, H, W]; object ``i`` has id ``i + 1``.

        Two exact shortcuts keep each proposal's cost to the pixels near it rather than the whole foreground: the
        pixels are sorted by embedding ``y``, so that the only pixels that can reach ``phi > 0.5`` (those within
        ``sigma * sqrt(2 ln 2)`` of the centre in ``y``) form one contiguous slice found by binary search; and the
        next seed is read off a once-sorted seed order (skipping clustered pixels) instead of an argmax over all.
        """
        h, w = seed.shape[-2:]
        device = seed.device
        labels = torch.zeros(h * w, dtype=torch.int64, device=device)
        seed_max, seed_class = seed.reshape(seed.shape[0], -1).max(0)  # [H * W]
        pixels = torch.nonzero(seed_max > self.fg_threshold).squeeze(1)  # [P] foreground pixels
        e = embedding.reshape(2, -1)[:, pixels].t()  # [P, 2]
        e_y, by_y = torch.sort(e[:, 0].contiguous(), stable=True)  # the y-sorted order used from here on
        pixels, e = pixels[by_y], e[by_y].contiguous()
        inv_two_var = 0.5 / sigma.reshape(sigma.shape[0], -1)[:, pixels].t().pow(2).clamp(min=1e-12)  # [P, S]
        # phi > 0.5 needs (dy)^2 * inv_two_var_y < ln 2: the y reach of each pixel as a centre, widened by 0.1%
        # so that every pixel left outside has phi strictly below 0.5 despite rounding
        reach = (math.log(2.0) / inv_two_var[:, 0]).sqrt() * 1.001 + 1e-6  # [P]
        seeds = seed_max[pixels]  # [P]
        clustered = torch.zeros(pixels.numel(), dtype=torch.bool, device=device)
        assigned = torch.zeros_like(pixels)
        raster = torch.argsort(pixels)  # ties between equal seeds go to the first pixel in raster order
        seed_order = raster[torch.sort(seeds[raster], descending=True, stable=True)[1]]
        seed_order = seed_order[seeds[seed_order] >= self.seed_threshold]
        scores: list[float] = []
        classes: list[int] = []
        position, proposals = 0, 0
        while position < seed_order.numel() and proposals < self.max_proposals:
            window = seed_order[position : position + 256]
            free = torch.nonzero(~clustered[window])
            if free.numel() == 0:
                position += window.numel()
                continue
            position += int(free[0]) + 1
            i = int(window[int(free[0])])
            proposals += 1
            lo, hi = (int(v) for v in torch.searchsorted(e_y, torch.stack([e_y[i] - reach[i], e_y[i] + reach[i]])))
            phi = torch.exp(-((e[lo:hi] - e[i]).pow(2) * inv_two_var[i]).sum(1))  # [hi - lo]
            proposal = phi > 0.5
            proposal[i - lo] = True
            new = proposal & ~clustered[lo:hi]
            n_new = int(new.sum())
            if n_new >= self.min_area and n_new > self.min_unclustered * int(proposal.sum()):
                scores.append(float(seeds[i]))
                classes.append(int(seed_class[pixels[i]]))
                assigned[lo:hi][new] = len(scores)
            clustered[lo:hi] |= proposal
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
