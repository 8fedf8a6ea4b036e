"""Input expansion against hand-built folders: files as given, folders sorted (recursive on request), patterns
matching images only (not other files, not folders named like images), suffixes case-insensitive, duplicates
dropped in first-seen order, and a missing input named in the error."""

from __future__ import annotations

from pathlib import Path

import pytest

from instseg.inference.predict_many import image_jobs
from instseg.inference.sources import IMAGE_SUFFIXES, find_images


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    (root / "sub").mkdir(parents=True)
    (root / "folder.png").mkdir()  # a folder named like an image
    for name in ("b.png", "a.JPG", "c.tif", "notes.txt", "d.webp", "sub/e.png", "sub/f.bmp", "sub/readme.md"):
        (root / name).write_bytes(b"x")
    return root


def test_folders_sorted_images_only(tree: Path) -> None:
    assert [p.name for p in find_images([tree])] == ["a.JPG", "b.png", "c.tif", "d.webp"]
    recursive = [p.relative_to(tree).as_posix() for p in find_images([tree], recursive=True)]
    assert recursive == ["a.JPG", "b.png", "c.tif", "d.webp", "sub/e.png", "sub/f.bmp"]
    assert {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp"} == IMAGE_SUFFIXES


def test_patterns_match_image_files_only(tree: Path) -> None:
    assert [p.name for p in find_images([str(tree / "*")])] == ["a.JPG", "b.png", "c.tif", "d.webp"]
    assert [p.name for p in find_images([str(tree / "*.png")])] == ["b.png"]  # not the folder "folder.png"
    assert [p.name for p in find_images([str(tree / "**" / "*.png")], recursive=True)] == ["b.png", "e.png"]
    with pytest.raises(ValueError, match=r"\*\.txt"):  # a pattern matching only non-images matches nothing
        find_images([str(tree / "*.txt")])


def test_files_as_given_duplicates_dropped_in_order(tree: Path) -> None:
    got = find_images([tree / "notes.txt", tree / "c.tif", tree, str(tree / "sub" / ".." / "b.png")])
    # a file named explicitly is taken whatever its suffix; each file once, where first seen
    assert [p.name for p in got] == ["notes.txt", "c.tif", "a.JPG", "b.png", "d.webp"]


def test_missing_input_is_named(tree: Path) -> None:
    with pytest.raises(ValueError, match=r"nothing_here\.png"):
        find_images([tree / "b.png", tree / "nothing_here.png"])


def test_jobs_count_from_one_in_order(tree: Path) -> None:
    jobs = image_jobs([tree / "sub", tree / "c.tif"])
    assert [(i, p.name) for i, p in jobs] == [(1, "e.png"), (2, "f.bmp"), (3, "c.tif")]
