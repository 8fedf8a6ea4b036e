"""Data sets and formats: COCO json, label-image and YOLO folders, conversion, statistics, loading.

Kept import-free (no torch, no pycocotools) so that ``instseg.data.paths`` and friends load fast; import the
submodules you need, e.g. ``from instseg.data.coco import CocoDataset``.
"""
