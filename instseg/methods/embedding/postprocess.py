"""``EmbeddingPostprocessor``: seed-and-grow clustering of pixel embeddings into objects."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from scipy import ndimage as ndi
from torch import Tensor

from instseg.ops.instance_maps import scored_instances
from instseg.structures import ImageBatch, Instances


class EmbeddingPostprocessor:
    """Turn ``embedding`` / ``fg_logits`` / ``seed_logits`` (/ ``class_logits``) into ``Instances``.

    The maps are cropped to each image's valid region and upsampled bilinearly to its original size first,
    so ``min_area`` counts original pixels. Clustering (``cluster``) is greedy seed-and-grow, as proposed with
    the discriminative loss (De Brabandere et al. 2017):
      1. among unassigned foreground pixels (``fg_prob > fg_threshold``) take the one with the highest seed
         probability; stop when it is below ``seed_threshold`` (0.3 by default: the seed target peaks at 1 only
         in the very centre of an object, and smooth predictions of small objects often peak near 0.5);
      2. its object = every unassigned foreground pixel of the same connected foreground region whose embedding
         lies within ``margin`` of the seed's, then within ``margin`` of those pixels' mean (one refinement, in
         case the seed pixel sits off its object's mean) — one tensor operation over all pixels;
      3. keep the object if it has at least ``min_area`` pixels; either way its pixels leave the pool.
    The loop runs once per object, never per pixel. Restricting growth to the seed's connected region is a
    cheap guard against merging two distant objects whose embeddings happen to be close. With the loss's
    ``delta_v``/``delta_d`` (0.5/1.5), pixels of one object are at most ``2 delta_v = 1`` apart and pixels of
    different objects at least ``2 delta_d - 2 delta_v = 2`` apart, hence the default ``margin = delta_d``.
    Score = mean foreground probability over the object; class = highest mean class probability.
    """

    def __init__(
        self,
        fg_threshold: float = 0.5,
        seed_threshold: float = 0.3,
        margin: float = 1.5,
        min_area: int = 8,
        score_threshold: float = 0.5,
        max_instances: int = 5000,
    ) -> None:
        self.fg_threshold = fg_threshold
        self.seed_threshold = seed_threshold
        self.margin = margin
        self.min_area = min_area
        self.score_threshold = score_threshold
        self.max_instances = max_instances

    def cluster(self, embedding: Tensor, fg_prob: Tensor, seed_prob: Tensor) -> Tensor:
        """Label map Tensor[H, W] int64 (0 = background, ids 1..N) of embedding Tensor[E, H, W], maps Tensor[H, W]."""
        h, w = fg_prob.shape
        labels = torch.zeros(h * w, dtype=torch.int64, device=fg_prob.device)
        fg = (fg_prob > self.fg_threshold).reshape(-1)
        if not bool(fg.any()):
            return labels.view(h, w)
        regions, n_regions = ndi.label(fg.view(h, w).cpu().numpy())
        region = torch.from_numpy(regions).to(fg.device).reshape(-1)
        # foreground pixels ordered by connected region, so that each region is one contiguous slice
        pixels = torch.nonzero(fg).squeeze(1)
        pixels = pixels[torch.argsort(region[pixels], stable=True)]  # [P]
        ends = torch.bincount(region[pixels], minlength=n_regions + 1).cumsum(0)  # region r is [ends[r-1], ends[r])
        x = embedding.reshape(embedding.shape[0], -1)[:, pixels].t().contiguous().float()  # [P, E]
        sq_norm = x.pow(2).sum(1)  # [P]; |x - c|^2 = |x|^2 - 2 x.c + |c|^2 needs one mat-vec per step
        candidates = seed_prob.reshape(-1)[pixels].float().clone()  # [P]; -1 once a pixel is taken
        assigned = torch.zeros_like(pixels)
        region_of = region[pixels]
        margin2 = self.margin**2
        count = 0
        for _ in range(self.max_instances):
            i = int(candidates.argmax())
            if float(candidates[i]) < self.seed_threshold:
                break
            r = int(region_of[i])
            lo, hi = int(ends[r - 1]), int(ends[r])
            pool = candidates[lo:hi] >= -0.5  # still-free pixels of the seed's region
            xs, norms = x[lo:hi], sq_norm[lo:hi]
            member = pool & (norms - 2.0 * (xs @ x[i]) + sq_norm[i] < margin2)
            center = xs[member].mean(0)
            member = pool & (norms - 2.0 * (xs @ center) + center.dot(center) < margin2)
            member[i - lo] = True
            candidates[lo:hi][member] = -1.0
            if int(member.sum()) >= self.min_area:
                count += 1
                assigned[lo:hi][member] = count
        labels[pixels] = assigned
        return labels.view(h, w)

    def __call__(self, outputs: dict[str, Tensor], images: ImageBatch) -> list[Instances]:
        results = []
        dim = outputs["embedding"].shape[1]
        for i, ((h, w), original) in enumerate(zip(images.image_sizes, images.original_sizes, strict=True)):
            maps = [
                outputs["embedding"][i, :, :h, :w],
                outputs["fg_logits"][i, :, :h, :w].sigmoid(),
                outputs["seed_logits"][i, :, :h, :w].sigmoid(),
            ]
            if "class_logits" in outputs:
                maps.append(outputs["class_logits"][i, :, :h, :w].softmax(dim=0))
            stacked = torch.cat(maps).float()[None]  # [1, E + 2 (+K), h, w]
            if (h, w) != tuple(original):
                stacked = F.interpolate(stacked, size=tuple(original), mode="bilinear", align_corners=False)
            stacked = stacked[0].detach().cpu()
            fg_prob, seed_prob = stacked[dim], stacked[dim + 1]
            label_map = self.cluster(stacked[:dim], fg_prob, seed_prob)
            class_prob = stacked[dim + 2 :] if stacked.shape[0] > dim + 2 else None
            instances = scored_instances(label_map, fg_prob, class_prob, compact=True)  # masks cropped to boxes
            keep = torch.ge(instances.scores, self.score_threshold)  # type: ignore[arg-type]  # scores always set here
            results.append(instances if bool(keep.all()) else instances[keep])
        return results
