"""Prediction of many images as a library function: read, predict, write results json / label maps / overlays.

The loop behind ``instseg predict``, callable from Python and shaped for other drivers (a server, a Ray job):
``iter_predictions`` reads and predicts one image at a time and yields an ``ImagePrediction`` (an unreadable file
becomes an item with its ``error``, never an exception that ends the run); ``PredictionWriter`` writes each item
under one output folder and finally the COCO results json and the list of images they cover; ``predict_many``
joins the two. Every output file name comes from ``unique_output_stems``, so two inputs never share an output
file, and the folder is prepared by ``prepare_output_dir``, so a reused folder never mixes stale and new files.

Output folder layout (the format of ``instseg predict``):
  ``results.json``  COCO results (compressed RLE, xywh boxes, scores) of every image;
  ``images.json``   ``{"images": [{"id", "file_name", "height", "width"}], "skipped": ["path", ...]}``;
  ``labels/<stem>.png|.tif``  label map per image (16-bit PNG; 32-bit TIFF past 65535 objects);
  ``overlays/<stem>.png``     the image with its objects drawn.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from instseg.data.output_paths import confined_path, prepare_output_dir, unique_output_stems
from instseg.inference.writers import results_to_coco_images, write_json_atomic, write_label_map_of, write_overlay
from instseg.structures import Instances

Job = tuple[int, Path]  # (image id, image file)


@dataclass
class ImagePrediction:
    """One image's outcome: its ``instances`` (compact) and pixels, or the ``error`` that made it unreadable."""

    image_id: int
    path: Path
    image: np.ndarray | None = None  # [H, W, 3] uint8
    instances: Instances | None = None
    error: str | None = None


@dataclass
class PredictManySummary:
    """What a ``predict_many`` run wrote: counts, the skipped files with their reasons, and every file path."""

    out: Path
    images: int = 0
    instances: int = 0
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)

    @property
    def results_path(self) -> Path:
        return self.out / "results.json"


def iter_predictions(predictor: Callable[[np.ndarray], Instances], jobs: Iterable[Job]) -> Iterator[ImagePrediction]:
    """Read and predict each ``(image_id, path)`` in turn; files that cannot be read come back with ``error``.

    ``predictor`` is a ``Predictor`` (or any callable from an [H, W, 3] uint8 image to ``Instances``).
    """
    from instseg.data.image_io import read_image, to_rgb_uint8

    for image_id, path in jobs:
        try:
            image = to_rgb_uint8(read_image(path))
        except ValueError as err:
            yield ImagePrediction(int(image_id), Path(path), error=str(err))
            continue
        yield ImagePrediction(int(image_id), Path(path), image=image, instances=predictor(image))


class PredictionWriter:
    """Writes ``ImagePrediction`` items under ``out``; ``finish`` writes ``results.json`` and ``images.json``.

    ``stems[(image_id, path)]`` names each image's label map and overlay (use ``unique_output_stems``); ``out``
    must already be prepared (``prepare_output_dir``). Results are kept as COCO dicts (RLE strings, not masks)
    until ``finish``.
    """

    def __init__(
        self,
        out: Path,
        stems: dict[Job, str],
        category_ids: Sequence[int] | None = None,
        class_names: Sequence[str] | None = None,
        label_maps: bool = True,
        overlays: bool = True,
    ) -> None:
        self.out = Path(out)
        self.stems = stems
        self.category_ids = list(category_ids) if category_ids is not None else None
        self.class_names = list(class_names) if class_names is not None else None
        self.label_maps = label_maps
        self.overlays = overlays
        self.results: list[dict[str, Any]] = []
        self.done: list[tuple[int, Path, tuple[int, int]]] = []
        self.summary = PredictManySummary(self.out)

    def write(self, item: ImagePrediction) -> list[Path]:
        """Record one item: its results, and its label map and overlay files (returned)."""
        if item.error is not None or item.instances is None or item.image is None:
            self.summary.skipped.append((item.path, item.error or "no prediction"))
            return []
        found = item.instances
        self.results.extend(found.to_coco(item.image_id, self.category_ids))
        self.done.append((item.image_id, item.path, found.image_size))
        self.summary.images += 1
        self.summary.instances += len(found)
        stem = self.stems[(item.image_id, item.path)]
        written = []
        if self.label_maps:
            folder = self.out / "labels"
            written.append(write_label_map_of(found, confined_path(folder, stem, f"label map of {item.path}")))
        if self.overlays:
            target = confined_path(self.out / "overlays", f"{stem}.png", f"overlay of {item.path}")
            written.append(write_overlay(item.image, found, target, self.class_names))
        self.summary.files.extend(written)
        return written

    def finish(self) -> PredictManySummary:
        """Write ``results.json`` and ``images.json`` (atomically) and return the run's summary."""
        write_json_atomic(self.results, self.out / "results.json")
        skipped = [str(path) for path, _ in self.summary.skipped]
        write_json_atomic({"images": results_to_coco_images(self.done), "skipped": skipped}, self.out / "images.json")
        self.summary.files.extend([self.out / "results.json", self.out / "images.json"])
        return self.summary


def image_jobs(inputs: Sequence[str | Path]) -> list[Job]:
    """``(image_id, path)`` for the images named by ``inputs`` (files, folders, patterns), ids from 1."""
    from instseg.inference.sources import find_images

    return list(enumerate(find_images(inputs), start=1))


def predict_many(
    predictor: Callable[[np.ndarray], Instances],
    jobs: Sequence[Job],
    out: Path,
    category_ids: Sequence[int] | None = None,
    class_names: Sequence[str] | None = None,
    label_maps: bool = True,
    overlays: bool = True,
    overwrite: bool = False,
    protected: Sequence[Path] = (),
    prepared: bool = False,
    on_item: Callable[[ImagePrediction], None] | None = None,
) -> PredictManySummary:
    """Predict every ``(image_id, path)`` of ``jobs`` and write the results under ``out`` (layout above).

    ``out`` must be new or empty unless ``overwrite`` (then its earlier contents are removed first); it may not
    be an input file nor hold one (``protected`` adds further inputs such as an annotation file). Unreadable
    images are skipped and listed in the summary and in ``images.json``; ``on_item`` sees every item as it is
    done (progress bars, logs). ``prepared=True`` says the caller already ran ``prepare_output_dir`` on ``out``
    (a command that refuses a bad folder before loading its model). Raises ValueError when ``jobs`` is empty.
    """
    if not jobs:
        raise ValueError("no image files to predict")
    paths = [Path(p) for _, p in jobs]
    if not prepared:
        prepare_output_dir(Path(out), inputs=[*paths, *protected], overwrite=overwrite)
    if label_maps:
        (Path(out) / "labels").mkdir(exist_ok=True)
    if overlays:
        (Path(out) / "overlays").mkdir(exist_ok=True)
    stems = {(int(i), Path(p)): stem for (i, p), stem in zip(jobs, unique_output_stems(paths), strict=True)}
    writer = PredictionWriter(Path(out), stems, category_ids, class_names, label_maps, overlays)
    for item in iter_predictions(predictor, jobs):
        writer.write(item)
        if on_item is not None:
            on_item(item)
    return writer.finish()
