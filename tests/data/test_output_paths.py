"""The one path-safety helper: names from files stay inside their root, outputs never touch inputs or mix runs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from instseg.data.output_paths import confined_path, prepare_output_dir, unique_output_stems


def test_confined_path_accepts_plain_relative_names(tmp_path: Path) -> None:
    assert confined_path(tmp_path, "a/b.png", "image 1") == tmp_path / "a" / "b.png"
    assert confined_path(tmp_path, "./c.png", "image 2") == tmp_path / "c.png"
    assert confined_path(tmp_path, "img[ch1].png", "image 3") == tmp_path / "img[ch1].png"


@pytest.mark.parametrize(
    "name",
    ["/etc/passwd", "../x.png", "a/../../x.png", "a/..", "..\\x.png", "C:\\x.png", "c:/x.png", "", " ", "a\x00b", "."],
)
def test_confined_path_refuses_escapes(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError, match="image 7"):
        confined_path(tmp_path / "root", name, "image 7")


def test_confined_path_refuses_symlink_out_of_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "link").symlink_to(outside)
    with pytest.raises(ValueError, match="outside"):
        confined_path(root, "link/x.png", "image 3")


def test_confined_path_refuses_non_strings(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="file_name"):
        confined_path(tmp_path, 5, "file_name")  # type: ignore[arg-type]


def test_prepare_output_dir_creates_and_refuses_stale(tmp_path: Path) -> None:
    out = prepare_output_dir(tmp_path / "out")
    assert out.is_dir()
    (out / "old.json").write_text("{}")
    with pytest.raises(ValueError, match="--overwrite"):
        prepare_output_dir(out)
    assert (out / "old.json").exists()
    prepare_output_dir(out, overwrite=True)
    assert list(out.iterdir()) == []


def test_prepare_output_dir_refuses_existing_file(tmp_path: Path) -> None:
    target = tmp_path / "file.txt"
    target.write_text("keep")
    with pytest.raises(ValueError, match="existing file"):
        prepare_output_dir(target, overwrite=True)
    assert target.read_text() == "keep"


def test_prepare_output_dir_refuses_inputs(tmp_path: Path) -> None:
    images = tmp_path / "images"
    images.mkdir()
    (images / "a.png").write_bytes(b"x")
    with pytest.raises(ValueError, match="input"):
        prepare_output_dir(images, [images], overwrite=True)
    with pytest.raises(ValueError, match="inside the input folder"):
        prepare_output_dir(images / "results", [images])
    with pytest.raises(ValueError, match="existing file"):
        prepare_output_dir(images / "a.png", [images / "a.png"])
    with pytest.raises(ValueError, match="input file"):
        prepare_output_dir(images, [images / "a.png"], overwrite=True)
    assert (images / "a.png").read_bytes() == b"x"


def test_prepare_output_dir_overwrite_never_follows_links(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("keep")
    out = tmp_path / "out"
    out.mkdir()
    (out / "link").symlink_to(outside, target_is_directory=True)
    (out / "sub").mkdir()
    (out / "sub" / "x").write_text("x")
    prepare_output_dir(out, overwrite=True)
    assert list(out.iterdir()) == []
    assert (outside / "keep.txt").read_text() == "keep"


def test_prepare_output_dir_refuses_link_to_file(tmp_path: Path) -> None:
    target = tmp_path / "t.txt"
    target.write_text("t")
    link = tmp_path / "l"
    os.symlink(target, link)
    with pytest.raises(ValueError, match=r"link|file"):
        prepare_output_dir(link, overwrite=True)
    assert target.read_text() == "t"


def test_unique_output_stems() -> None:
    assert unique_output_stems([Path("a/x.png"), Path("b/y.png")]) == ["x", "y"]
    assert unique_output_stems([Path("a/x.png"), Path("b/x.png")]) == ["a__x", "b__x"]
    assert unique_output_stems([Path("r/a/s/x.png"), Path("r/b/s/x.png"), Path("q/z.png")]) == [
        "a__s__x",
        "b__s__x",
        "z",
    ]
    names = unique_output_stems([Path("a/x.png"), Path("a/x.tif"), Path("a/x.png")])
    assert len(set(names)) == 3
    assert names == unique_output_stems([Path("a/x.png"), Path("a/x.tif"), Path("a/x.png")])
    assert unique_output_stems([]) == []
