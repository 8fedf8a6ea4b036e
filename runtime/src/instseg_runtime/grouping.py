"""Grouping steps of the bottom-up models in numpy / scipy / scikit-image: per-pixel maps -> objects.

The exported graph of a bottom-up model ends with its per-pixel maps at the original image size (probabilities
already applied); these functions are the numpy form of the models' post-processors
(``instseg.methods.{watershed,embedding,spatial_embedding}.postprocess``), with the same parameters, which the
exported file stores in its metadata. The watershed's label step is shared: ``instseg``'s post-processor calls
``watershed_labels``; the two clustering steps are written in torch on the ``instseg`` side (they run on the
model's device), and tests compare both sides on the same maps.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from scipy import ndimage as ndi
from skimage.feature import peak_local_max
from skimage.segmentation import watershed

from instseg_runtime.instances import RuntimeInstances, label_map_instances, scored_instances
from instseg_runtime.star_convex import star_convex_grouping

Maps = Mapping[str, np.ndarray]


def watershed_labels(
    fg_prob: np.ndarray,
    distance: np.ndarray,
    fg_threshold: float,
    seed_threshold: float,
    seed_method: str = "threshold",
    min_distance: int = 3,
    min_area: int = 8,
) -> np.ndarray:
    """Label map int32 [H, W] (0 = background, ids not contiguous) of a seeded watershed of ``distance`` inside
    ``fg_prob > fg_threshold`` (maps [H, W]); ``instseg``'s ``WatershedPostprocessor.segment`` is this function.

    Seeds: ``"threshold"`` labels the regions of ``distance > seed_threshold``; ``"peaks"`` the local maxima of
    ``skimage.feature.peak_local_max``. A foreground component without a seed becomes one object; objects under
    ``min_area`` pixels are cleared.
    """
    fg = fg_prob > fg_threshold
    if not fg.any():
        return np.zeros(fg.shape, dtype=np.int32)
    if seed_method == "threshold":
        markers, n_seeds = ndi.label(fg & (distance > seed_threshold))
    else:
        peaks = peak_local_max(
            np.where(fg, distance, 0.0), min_distance=min_distance, threshold_abs=seed_threshold, exclude_border=False
        )
        markers = np.zeros(fg.shape, dtype=np.int32)
        n_seeds = len(peaks)
        markers[peaks[:, 0], peaks[:, 1]] = np.arange(1, n_seeds + 1, dtype=np.int32)
    components, n_components = ndi.label(fg)
    seeded = np.zeros(n_components + 1, dtype=bool)
    seeded[components[markers > 0]] = True
    orphans = ~seeded[components]  # foreground components without a seed (and the background)
    markers = np.where(orphans & fg, components + n_seeds, markers).astype(np.int32)
    labels = watershed(-distance, markers, mask=fg)
    areas = np.bincount(labels.ravel())
    small = areas < min_area
    small[0] = False
    if small.any():
        labels[small[labels]] = 0
    return labels.astype(np.int32, copy=False)


def watershed_grouping(maps: Maps, params: Mapping[str, Any]) -> RuntimeInstances:
    """Seeded watershed of ``distance`` inside ``fg_prob > fg_threshold`` (maps [H, W]; ``class_prob`` [K, H, W]
    optional, ``watershed_labels``); objects scoring (mean ``fg_prob``) under ``score_threshold`` dropped."""
    fg_prob = maps["fg_prob"]
    labels = watershed_labels(
        fg_prob,
        maps["distance"],
        params["fg_threshold"],
        params["seed_threshold"],
        params["seed_method"],
        params["min_distance"],
        params["min_area"],
    )
    if not labels.any():
        return RuntimeInstances.empty(fg_prob.shape)  # type: ignore[arg-type]
    return _keep_scored(scored_instances(labels, fg_prob, maps.get("class_prob")), params["score_threshold"])


def embedding_grouping(maps: Maps, params: Mapping[str, Any]) -> RuntimeInstances:
    """Greedy seed-and-grow clustering of pixel embeddings (``embedding`` [E, H, W], ``fg_prob``/``seed_prob``
    [H, W], ``class_prob`` [K, H, W] optional) inside connected foreground regions, then scored and filtered."""
    embedding, fg_prob, seed_prob = maps["embedding"], maps["fg_prob"], maps["seed_prob"]
    h, w = fg_prob.shape
    label_map = np.zeros(h * w, np.int64)
    fg = (fg_prob > params["fg_threshold"]).ravel()
    if fg.any():
        regions, n_regions = ndi.label(fg.reshape(h, w))
        region = regions.ravel()
        pixels = np.flatnonzero(fg)
        pixels = pixels[np.argsort(region[pixels], kind="stable")]  # each region one contiguous slice
        ends = np.cumsum(np.bincount(region[pixels], minlength=n_regions + 1))
        x = np.ascontiguousarray(embedding.reshape(embedding.shape[0], -1)[:, pixels].T, dtype=np.float32)  # [P, E]
        sq_norm = (x * x).sum(1)
        candidates = seed_prob.ravel()[pixels].astype(np.float32)  # -1 once a pixel is taken
        assigned = np.zeros(pixels.size, np.int64)
        region_of = region[pixels]
        margin2 = params["margin"] ** 2
        count = 0
        for _ in range(params["max_instances"]):
            i = int(candidates.argmax())
            if candidates[i] < params["seed_threshold"]:
                break
            r = int(region_of[i])
            lo, hi = int(ends[r - 1]), int(ends[r])
            pool = candidates[lo:hi] >= -0.5
            xs, norms = x[lo:hi], sq_norm[lo:hi]
            member = pool & (norms - 2.0 * (xs @ x[i]) + sq_norm[i] < margin2)
            centre = xs[member].mean(0)
            member = pool & (norms - 2.0 * (xs @ centre) + centre.dot(centre) < margin2)
            member[i - lo] = True
            candidates[lo:hi][member] = -1.0
            if int(member.sum()) >= params["min_area"]:
                count += 1
                assigned[lo:hi][member] = count
        label_map[pixels] = assigned
    instances = scored_instances(label_map.reshape(h, w), fg_prob, maps.get("class_prob"))
    return _keep_scored(instances, params["score_threshold"])


def spatial_embedding_grouping(maps: Maps, params: Mapping[str, Any]) -> RuntimeInstances:
    """Seed-by-seed clustering with the predicted bandwidths (``embedding`` [2, H, W], ``sigma`` [S, H, W],
    ``seed`` [K, H, W]); score = the seed value at the object's seed pixel, label = the class that fired there.

    As on the ``instseg`` side, the pixels are sorted by embedding ``y`` so that each proposal's ``phi`` is computed
    only on the contiguous slice within ``sigma * sqrt(2 ln 2)`` of its centre (every other pixel has
    ``phi < 0.5``), and the seeds are walked in one sorted order: the same objects as a scan over every pixel."""
    embedding, sigma, seed = maps["embedding"], maps["sigma"], maps["seed"]
    h, w = seed.shape[-2:]
    label_map = np.zeros(h * w, np.int64)
    flat_seed = seed.reshape(seed.shape[0], -1)
    seed_max, seed_class = flat_seed.max(0), flat_seed.argmax(0)
    pixels = np.flatnonzero(seed_max > params["fg_threshold"])
    e = embedding.reshape(2, -1)[:, pixels].T  # [P, 2]
    by_y = np.argsort(e[:, 0], kind="stable")
    pixels, e = pixels[by_y], np.ascontiguousarray(e[by_y])
    e_y = np.ascontiguousarray(e[:, 0])
    inv_two_var = 0.5 / np.maximum(sigma.reshape(sigma.shape[0], -1)[:, pixels].T ** 2, 1e-12)  # [P, S]
    reach = np.sqrt(np.log(2.0) / inv_two_var[:, 0]) * 1.001 + 1e-6  # widened: every pixel left out has phi < 0.5
    seeds = seed_max[pixels].astype(np.float32)
    raster = np.argsort(pixels, kind="stable")  # equal seeds: the first pixel in raster order goes first
    seed_order = raster[np.argsort(-seeds[raster], kind="stable")]
    seed_order = seed_order[seeds[seed_order] >= params["seed_threshold"]]
    clustered = np.zeros(pixels.size, bool)
    assigned = np.zeros(pixels.size, np.int64)
    scores: list[float] = []
    classes: list[int] = []
    position, proposals = 0, 0
    while position < seed_order.size and proposals < params["max_proposals"]:
        window = seed_order[position : position + 256]
        free = np.flatnonzero(~clustered[window])
        if free.size == 0:
            position += window.size
            continue
        position += int(free[0]) + 1
        i = int(window[free[0]])
        proposals += 1
        lo, hi = (int(v) for v in np.searchsorted(e_y, [e_y[i] - reach[i], e_y[i] + reach[i]]))
        phi = np.exp(-(((e[lo:hi] - e[i]) ** 2) * inv_two_var[i]).sum(1))
        proposal = phi > 0.5
        proposal[i - lo] = True
        new = proposal & ~clustered[lo:hi]
        n_new = int(new.sum())
        if n_new >= params["min_area"] and n_new > params["min_unclustered"] * int(proposal.sum()):
            scores.append(float(seeds[i]))
            classes.append(int(seed_class[pixels[i]]))
            assigned[lo:hi][new] = len(scores)
        clustered[lo:hi] |= proposal
        if len(scores) >= params["max_instances"]:
            break
    label_map[pixels] = assigned
    return label_map_instances(label_map.reshape(h, w), np.asarray(scores, np.float32), np.asarray(classes, np.int64))


def _keep_scored(instances: RuntimeInstances, threshold: float) -> RuntimeInstances:
    keep = instances.scores >= threshold
    if keep.all():
        return instances
    return RuntimeInstances(
        instances.image_size,
        instances.boxes[keep],
        instances.labels[keep],
        instances.scores[keep],
        instances.masks[keep],
    )


GROUPINGS: dict[str, Callable[[Maps, Mapping[str, Any]], RuntimeInstances]] = {
    "watershed": watershed_grouping,
    "embedding": embedding_grouping,
    "spatial_embedding": spatial_embedding_grouping,
    "star_convex": star_convex_grouping,
}
