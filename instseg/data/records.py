"""The in-memory form of a data set while it moves between formats (COCO json, label images, YOLO txt).

Readers of each format produce ``DatasetRecords``; writers consume them. A segmentation stays in the form it was
read in (COCO polygons in absolute pixels, or a COCO RLE) until a writer needs another, so polygon sources reach
polygon targets without being rasterised.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from instseg.data.image_io import read_image
from instseg.data.output_paths import confined_path


@dataclass
class ObjectRecord:
    """One object: its data set category id, COCO ``segmentation`` (polygon list or RLE dict) and crowd flag."""

    category_id: int
    segmentation: Any
    iscrowd: int = 0


@dataclass
class ImageRecord:
    """One image: its path relative to the images folder, size, and objects."""

    file_name: str
    height: int
    width: int
    objects: list[ObjectRecord] = field(default_factory=list)
    image_id: int | None = None


@dataclass
class DatasetRecords:
    """A whole data set: images folder, categories (``{"id", "name", ...}`` sorted by id), images, skipped items."""

    images_dir: Path
    categories: list[dict[str, Any]]
    images: list[ImageRecord]
    skipped: list[str] = field(default_factory=list)

    @property
    def category_ids(self) -> list[int]:
        return [int(c["id"]) for c in self.categories]

    @property
    def class_names(self) -> list[str]:
        return [str(c["name"]) for c in self.categories]


@dataclass
class ConversionReport:
    """What a conversion did: counts written, items skipped (with reasons) and what the target format lost."""

    images_written: int = 0
    objects_written: int = 0
    skipped: list[str] = field(default_factory=list)  # unreadable images / invalid items, one message each
    crowd_dropped: int = 0  # crowd regions a format without crowd flags cannot hold
    overlap_pixels: int = 0  # pixels shared by objects (label maps keep one owner, see label_images)
    overlap_images: int = 0
    lost_objects: list[str] = field(default_factory=list)  # objects left with no pixel in a label map

    def summary(self) -> str:
        """One line for people."""
        parts = [f"{self.images_written} images", f"{self.objects_written} objects written"]
        if self.skipped:
            parts.append(f"{len(self.skipped)} skipped")
        if self.crowd_dropped:
            parts.append(f"{self.crowd_dropped} crowd regions dropped")
        if self.overlap_pixels:
            parts.append(f"{self.overlap_pixels} overlapping pixels in {self.overlap_images} images")
        if self.lost_objects:
            parts.append(f"{len(self.lost_objects)} objects fully covered by others")
        return ", ".join(parts)


def check_image(path: Path, expected_size: tuple[int, int] | None = None) -> tuple[int, int]:
    """Decode an image fully (so truncated files are caught) and return ``(h, w)``; ValueError names the file."""
    pixels = read_image(path)
    size = (int(pixels.shape[0]), int(pixels.shape[1]))
    if expected_size is not None and size != tuple(expected_size):
        raise ValueError(
            f"{path}: image is {size[0]}x{size[1]} (h x w) but the annotations say "
            f"{expected_size[0]}x{expected_size[1]}"
        )
    return size


def place_image(src: Path, dst: Path, link: bool = False) -> None:
    """Copy ``src`` to ``dst`` (creating folders), or hard-link it when ``link`` and the file system allows."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.exists() or dst.is_symlink():
        if dst.resolve() == src.resolve():
            return
        dst.unlink()
    if link:
        try:
            os.link(src, dst)
            return
        except OSError:
            pass  # other device or no permission: fall back to a copy
    shutil.copyfile(src, dst)


def record_name(record: ImageRecord) -> str:
    """How messages name an image record: its id (when it has one) and file name."""
    prefix = f"image {record.image_id} " if record.image_id is not None else "image "
    return f"{prefix}file_name {record.file_name!r}"


def place_record_image(records: DatasetRecords, record: ImageRecord, dst: Path, link: bool = False) -> None:
    """Copy (or link) a record's image to ``dst/images/<file_name>``; a name leaving either folder is refused."""
    what = record_name(record)
    src = confined_path(records.images_dir, record.file_name, what)
    place_image(src, confined_path(dst / "images", record.file_name, what), link)


def relative_stem(file_name: str) -> str:
    """``file_name`` without its suffix, keeping sub-folders (``"a/b.png" -> "a/b"``): the key labels are found by."""
    path = Path(file_name)
    return str(path.with_suffix("")) if path.suffix else str(path)


def image_files(images_dir: Path) -> list[str]:
    """Image files below ``images_dir`` (recursively) as sorted relative POSIX paths."""
    from instseg.data.image_io import is_image_file

    found = [p for p in images_dir.rglob("*") if p.is_file() and is_image_file(p)]
    return sorted(p.relative_to(images_dir).as_posix() for p in found)


def unique_stems(file_names: list[str], where: Path) -> None:
    """Raise ValueError when two images share a stem (``a.png`` and ``a.jpg`` would share one label file)."""
    seen: dict[str, str] = {}
    for name in file_names:
        stem = relative_stem(name)
        if stem in seen:
            raise ValueError(f"{where}: images {seen[stem]} and {name} would share the label file of {stem!r}")
        seen[stem] = name
