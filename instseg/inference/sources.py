"""Expand the user's inputs (files, folders, glob patterns) into a sorted list of image files."""

from __future__ import annotations

import glob
from collections.abc import Sequence
from pathlib import Path

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp"}


def find_images(inputs: Sequence[str | Path], recursive: bool = False) -> list[Path]:
    """Image files named by ``inputs``: files as given, folders expanded (sorted), glob patterns matched.

    A path that does not exist and matches nothing raises ``ValueError`` naming it, so a typo is not
    silently an empty run.
    """
    found: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            pattern = "**/*" if recursive else "*"
            found.extend(sorted(p for p in path.glob(pattern) if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES))
        elif path.is_file():
            found.append(path)
        else:
            matches = sorted(Path(m) for m in glob.glob(str(item), recursive=recursive))
            matches = [m for m in matches if m.is_file() and m.suffix.lower() in IMAGE_SUFFIXES]
            if not matches:
                raise ValueError(f"{item}: no such file or folder, and no image matches it as a pattern")
            found.extend(matches)
    seen: set[Path] = set()
    unique = []
    for p in found:
        if p.resolve() not in seen:
            seen.add(p.resolve())
            unique.append(p)
    return unique
