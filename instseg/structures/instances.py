"""``Instances``: the one container for targets and predictions of one image."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from instseg.ops.boxes import masks_to_boxes, xyxy_to_xywh
from instseg.structures.box_masks import BoxMasks

IndexLike = int | slice | Tensor | Sequence[int]


class Instances:
    """Objects of one image: boxes, labels, and optionally masks and scores.

    Fields (N objects, image of ``image_size = (height, width)``):
      - ``boxes``: Tensor[N, 4] float32, ``xyxy`` absolute pixels (see ``instseg.ops.boxes``);
      - ``labels``: Tensor[N] int64, contiguous class index ``0..K-1``;
      - ``masks``: Tensor[N, H, W] bool, or ``BoxMasks`` (each mask cropped to its box: memory follows the
        objects, not the image; ``masks`` then builds the full stack on request), or ``None`` (box-only);
      - ``scores``: Tensor[N] float32, or ``None`` (ground truth).
    The same class serves as a training target and as a prediction, so evaluation, visualisation and
    export never need to tell the two apart.
    """

    def __init__(
        self,
        image_size: tuple[int, int],
        boxes: Tensor | None = None,
        labels: Tensor | None = None,
        masks: Tensor | BoxMasks | None = None,
        scores: Tensor | None = None,
    ) -> None:
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self._masks: Tensor | None = None
        self._box_masks: BoxMasks | None = None
        if isinstance(masks, BoxMasks):
            if masks.image_size != self.image_size:
                raise ValueError(
                    f"box masks are for an image of {masks.image_size}, the instances of {self.image_size}"
                )
            if boxes is None:
                boxes = masks.boxes().to(masks.device)
            self._box_masks = masks
        elif masks is not None:
            masks = masks.bool()
            if masks.dim() != 3 or tuple(masks.shape[1:]) != self.image_size:
                raise ValueError(
                    f"masks must be [N, {self.image_size[0]}, {self.image_size[1]}], got {tuple(masks.shape)}"
                )
            if boxes is None:
                boxes = masks_to_boxes(masks)
            self._masks = masks
        if boxes is None:
            boxes = torch.zeros((0, 4), dtype=torch.float32, device=masks.device if masks is not None else None)
        boxes = boxes.float().reshape(-1, 4)
        n = boxes.shape[0]
        if labels is None:
            labels = torch.zeros(n, dtype=torch.int64, device=boxes.device)
        labels = labels.long().reshape(-1)
        if labels.shape[0] != n:
            raise ValueError(f"labels has {labels.shape[0]} entries but boxes has {n}")
        if masks is not None and len(masks) != n:
            raise ValueError(f"masks has {len(masks)} entries but boxes has {n}")
        if scores is not None:
            scores = scores.float().reshape(-1)
            if scores.shape[0] != n:
                raise ValueError(f"scores has {scores.shape[0]} entries but boxes has {n}")
        self.boxes = boxes
        self.labels = labels
        self.scores = scores

    # -- the two mask forms -----------------------------------------------------------------------
    @property
    def has_masks(self) -> bool:
        """Whether the objects have masks (in either form)."""
        return self._masks is not None or self._box_masks is not None

    @property
    def is_compact(self) -> bool:
        """Whether the masks are held cropped to their boxes (``BoxMasks``)."""
        return self._box_masks is not None

    @property
    def masks(self) -> Tensor | None:
        """Full-frame masks Tensor[N, H, W] bool, or None; built from the crops when the masks are compact
        (N x H x W bits each time: consumers of large images read ``box_masks`` instead)."""
        if self._box_masks is not None:
            return self._box_masks.to_full()
        return self._masks

    @masks.setter
    def masks(self, value: Tensor | BoxMasks | None) -> None:
        """Replace the masks (either form; a full stack must be [N, H, W] of this image)."""
        replaced = Instances(self.image_size, boxes=self.boxes, labels=self.labels, masks=value, scores=self.scores)
        self._masks, self._box_masks = replaced._masks, replaced._box_masks

    @property
    def box_masks(self) -> BoxMasks | None:
        """The masks cropped to their boxes (``BoxMasks``), or None; cropped from full masks on request."""
        if self._masks is not None:
            return BoxMasks.from_full(self._masks)
        return self._box_masks

    def full_masks(self) -> Tensor | None:
        """Full-frame masks Tensor[N, H, W] bool, or None (the same as ``masks``, spelled as the request it is)."""
        return self.masks

    def compact(self) -> Instances:
        """The same objects with their masks cropped to their boxes, so their memory no longer grows with H x W."""
        if self._masks is None:
            return self
        return Instances(
            self.image_size,
            boxes=self.boxes,
            labels=self.labels,
            masks=BoxMasks.from_full(self._masks),
            scores=self.scores,
        )

    def mask_areas(self) -> Tensor:
        """Pixel count of each mask (Tensor[N] int64); raises ValueError without masks."""
        if self._box_masks is not None:
            return self._box_masks.areas()
        if self._masks is None:
            raise ValueError("mask_areas needs instances with masks")
        return self._masks.flatten(1).sum(1).long().cpu()

    def _mask_field(self) -> Tensor | BoxMasks | None:
        return self._box_masks if self._box_masks is not None else self._masks

    # -- construction -----------------------------------------------------------------------------
    @classmethod
    def empty(cls, image_size: tuple[int, int], with_masks: bool = True, with_scores: bool = False) -> Instances:
        """An image with no objects."""
        h, w = image_size
        return cls(
            image_size,
            boxes=torch.zeros((0, 4)),
            labels=torch.zeros(0, dtype=torch.int64),
            masks=torch.zeros((0, h, w), dtype=torch.bool) if with_masks else None,
            scores=torch.zeros(0) if with_scores else None,
        )

    @staticmethod
    def cat(items: Sequence[Instances]) -> Instances:
        """Concatenate instances of the same image size."""
        if len(items) == 0:
            raise ValueError("Instances.cat needs at least one item")
        size = items[0].image_size
        if any(it.image_size != size for it in items):
            raise ValueError(f"Instances.cat: image sizes differ: {sorted({it.image_size for it in items})}")
        has_masks = [it.has_masks for it in items]
        has_scores = [it.scores is not None for it in items]
        if len(set(has_masks)) != 1 or len(set(has_scores)) != 1:
            raise ValueError("Instances.cat: every item must have (or lack) masks and scores alike")
        masks: Tensor | BoxMasks | None = None
        if has_masks[0] and any(it.is_compact for it in items):  # one compact item makes the result compact
            masks = BoxMasks.cat([it.box_masks for it in items])  # type: ignore[misc]
        elif has_masks[0]:
            masks = torch.cat([it._masks for it in items])  # type: ignore[misc]
        scores = torch.cat([it.scores for it in items]) if has_scores[0] else None  # type: ignore[misc]
        return Instances(
            size,
            boxes=torch.cat([it.boxes for it in items]),
            labels=torch.cat([it.labels for it in items]),
            masks=masks,
            scores=scores,
        )

    # -- container protocol -----------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self.boxes.shape[0])

    def __getitem__(self, index: IndexLike) -> Instances:
        if isinstance(index, int):
            if not -len(self) <= index < len(self):
                raise IndexError(f"Instances index {index} out of range for {len(self)} objects")
            index = slice(index, index + 1 if index != -1 else None)
        elif not isinstance(index, slice | Tensor):
            index = torch.as_tensor(list(index), dtype=torch.long)
        return Instances(
            self.image_size,
            boxes=self.boxes[index],
            labels=self.labels[index],
            masks=_index_masks(self._mask_field(), index),
            scores=self.scores[index] if self.scores is not None else None,
        )

    def __repr__(self) -> str:
        fields = ["boxes", "labels"] + (["box_masks" if self.is_compact else "masks"] if self.has_masks else [])
        fields += ["scores"] if self.scores is not None else []
        return f"Instances(n={len(self)}, image_size={self.image_size}, fields={fields})"

    @property
    def device(self) -> torch.device:
        return self.boxes.device

    def to(self, device: torch.device | str) -> Instances:
        """Move every tensor to ``device``."""
        return Instances(
            self.image_size,
            boxes=self.boxes.to(device),
            labels=self.labels.to(device),
            masks=mask_field.to(device) if (mask_field := self._mask_field()) is not None else None,
            scores=self.scores.to(device) if self.scores is not None else None,
        )

    def resized(self, new_size: tuple[int, int]) -> Instances:
        """The same objects on the image resized to ``new_size = (height, width)``: masks by nearest
        neighbour, boxes scaled (re-derived from masks where masks exist, so they stay tight)."""
        import torch.nn.functional as F

        new_size = (int(new_size[0]), int(new_size[1]))
        if new_size == self.image_size:
            return self
        sy = new_size[0] / self.image_size[0]
        sx = new_size[1] / self.image_size[1]
        masks: Tensor | BoxMasks | None = None
        boxes = self.boxes * self.boxes.new_tensor([sx, sy, sx, sy])
        if self._box_masks is not None:
            masks = self._box_masks.resized(new_size)
            boxes = masks.boxes().to(boxes.device)
        elif self._masks is not None:
            if len(self) == 0:
                masks = self._masks.new_zeros((0, *new_size))
            else:
                masks = F.interpolate(self._masks[None].float(), size=new_size, mode="nearest-exact")[0] > 0.5
                boxes = masks_to_boxes(masks)
        return Instances(new_size, boxes=boxes, labels=self.labels, masks=masks, scores=self.scores)

    def sort_by_score(self) -> Instances:
        """Objects ordered by decreasing score (unchanged when there are no scores)."""
        if self.scores is None or len(self) == 0:
            return self
        return self[torch.argsort(self.scores, descending=True, stable=True)]

    # -- export -----------------------------------------------------------------------------------
    def to_coco(self, image_id: int, category_ids: Sequence[int] | None = None) -> list[dict[str, Any]]:
        """COCO result (or annotation) dicts: compressed-RLE ``segmentation``, ``bbox`` xywh, ``score``.

        ``category_ids[label]`` maps contiguous labels back to the data set's category ids; without it the
        category id is ``label + 1`` (COCO reserves 0).
        """
        from instseg.structures.masks import box_masks_to_rles, masks_to_rles  # pycocotools only when exporting

        n = len(self)
        if n == 0:
            return []
        labels = self.labels.cpu().tolist()
        boxes = xyxy_to_xywh(self.boxes.detach().cpu()).tolist()
        scores = self.scores.detach().cpu().tolist() if self.scores is not None else [1.0] * n
        rles: list[dict[str, Any]] | list[None] = [None] * n
        areas: list[int] = []
        if self._box_masks is not None:
            rles, areas = box_masks_to_rles(self._box_masks.to("cpu")), self._box_masks.areas().tolist()
        elif self._masks is not None:
            rles, areas = masks_to_rles(self._masks.detach().cpu().numpy()), self.mask_areas().tolist()
        out = []
        for i in range(n):
            label = labels[i]
            if category_ids is not None and not 0 <= label < len(category_ids):
                raise ValueError(f"label {label} has no category id (data set has {len(category_ids)} categories)")
            entry: dict[str, Any] = {
                "image_id": int(image_id),
                "category_id": int(category_ids[label]) if category_ids is not None else label + 1,
                "bbox": [round(float(v), 2) for v in boxes[i]],
                "score": float(scores[i]),
            }
            if rles[i] is not None:
                entry["segmentation"] = rles[i]
                entry["area"] = int(areas[i])
            out.append(entry)
        return out


def _index_masks(masks: Tensor | BoxMasks | None, index: slice | Tensor) -> Tensor | BoxMasks | None:
    """``masks[index]`` for either mask form."""
    if masks is None:
        return None
    return masks[index]
