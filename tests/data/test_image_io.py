"""Image reading: the one conversion rule to [H, W, 3] uint8, and errors that name the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from instseg.data.image_io import image_size, is_image_file, read_image, read_image_raw, to_rgb_uint8


def test_rgb_uint8_kept_and_grey_replicated(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    out = read_image(tmp_path / "rgb.png")
    assert out.dtype == np.uint8 and np.array_equal(out, rgb) and out.flags.writeable
    grey = rng.integers(0, 256, (4, 6), dtype=np.uint8)
    Image.fromarray(grey).save(tmp_path / "grey.png")
    out = read_image(tmp_path / "grey.png")
    assert out.shape == (4, 6, 3) and all(np.array_equal(out[:, :, c], grey) for c in range(3))


def test_alpha_dropped_not_composited(tmp_path: Path) -> None:
    rgba = np.zeros((3, 3, 4), dtype=np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 0  # fully transparent red stays red
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    assert np.all(read_image(tmp_path / "rgba.png") == [200, 0, 0])
    la = np.stack([np.full((2, 2), 90, np.uint8), np.full((2, 2), 10, np.uint8)], axis=-1)
    Image.fromarray(la, "LA").save(tmp_path / "la.png")
    assert np.all(read_image(tmp_path / "la.png") == 90)


def test_palette_expanded_to_rgb(tmp_path: Path) -> None:
    img = Image.new("P", (4, 2))
    img.putpalette([0, 0, 0, 255, 0, 0, 0, 0, 255] + [0] * (256 * 3 - 9))
    img.putdata([0, 1, 2, 1, 2, 2, 0, 1])
    img.save(tmp_path / "pal.png")
    out = read_image(tmp_path / "pal.png")
    assert out.shape == (2, 4, 3)
    assert out[0, 1].tolist() == [255, 0, 0] and out[0, 2].tolist() == [0, 0, 255] and out[0, 0].tolist() == [0, 0, 0]


def test_bilevel_png_becomes_0_and_255(tmp_path: Path) -> None:
    Image.fromarray(np.array([[True, False]])).save(tmp_path / "bw.png")
    assert read_image(tmp_path / "bw.png")[0, :, 0].tolist() == [255, 0]


def test_16bit_png_rescaled_by_percentiles(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    img = rng.integers(1000, 3000, (64, 64)).astype(np.uint16)  # a 12-bit camera in a 16-bit file
    img[0, 0] = 60000  # one hot pixel above the 99.9 percentile
    Image.fromarray(img).save(tmp_path / "deep.png")
    assert read_image_raw(tmp_path / "deep.png").dtype == np.uint16
    out = read_image(tmp_path / "deep.png")
    assert out.dtype == np.uint8 and out.shape == (64, 64, 3)
    assert out[0, 0, 0] == 255 and out.min() == 0 and out.max() == 255
    assert 100 < out.mean() < 160  # uses the full range, not img / 257 (which would be ~8)
    lo, hi = np.percentile(img.astype(float), [0.1, 99.9])
    expected = np.clip(np.rint((img.astype(float) - lo) * 255 / (hi - lo)), 0, 255)
    assert np.array_equal(out[:, :, 0], expected.astype(np.uint8))


def test_to_rgb_uint8_edge_cases() -> None:
    assert np.all(to_rgb_uint8(np.full((3, 3), 700, np.uint16)) == 0)  # constant deep image
    floats = np.array([[np.nan, 0.0], [0.5, 1.0]], dtype=np.float32)
    out = to_rgb_uint8(floats)
    assert out[0, 0, 0] == 0 and out[1, 1, 0] == 255
    assert to_rgb_uint8(np.ones((2, 2, 1), dtype=bool)).tolist() == [[[255] * 3] * 2] * 2
    with pytest.raises(ValueError, match="expected an image"):
        to_rgb_uint8(np.zeros((2, 2, 5), np.uint8))


def test_tiff_grey_channels_first_and_float(tmp_path: Path) -> None:
    grey = (np.arange(20, dtype=np.uint16) * 100).reshape(4, 5)
    tifffile.imwrite(tmp_path / "g.tif", grey)
    assert read_image(tmp_path / "g.tif").shape == (4, 5, 3)
    assert image_size(tmp_path / "g.tif") == (4, 5)
    cyx = np.stack([np.zeros((4, 5)), np.ones((4, 5)), np.full((4, 5), 2.0)]).astype(np.uint8)
    tifffile.imwrite(tmp_path / "syx.tif", cyx, photometric="rgb", planarconfig="separate")
    out = read_image(tmp_path / "syx.tif")
    assert out.shape == (4, 5, 3) and out[0, 0].tolist() == [0, 1, 2]
    tifffile.imwrite(tmp_path / "cyx.tif", cyx, imagej=True, metadata={"axes": "CYX"})
    assert read_image(tmp_path / "cyx.tif")[0, 0].tolist() == [0, 1, 2]
    tifffile.imwrite(tmp_path / "pages.tif", cyx, photometric="minisblack")  # 3 pages: a stack, not channels
    with pytest.raises(ValueError, match=r"pages\.tif"):
        read_image(tmp_path / "pages.tif")
    tifffile.imwrite(tmp_path / "f.tiff", np.linspace(0, 1, 30, dtype=np.float32).reshape(5, 6))
    out = read_image(tmp_path / "f.tiff")
    assert out.shape == (5, 6, 3) and out.max() == 255 and out.min() == 0


def test_tiff_stack_refused_naming_file(tmp_path: Path) -> None:
    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, np.zeros((6, 8, 9), np.uint16))  # a Z stack of 6 planes
    with pytest.raises(ValueError, match=r"stack\.tif") as err:
        read_image(path)
    assert "single 2-D" in str(err.value)


def test_truncated_and_bad_files_raise_naming_file(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(tmp_path / "ok.png")
    data = (tmp_path / "ok.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"cut\.png: cannot read image \(") as err:
        read_image(tmp_path / "cut.png")
    assert str(tmp_path / "cut.png") in str(err.value)
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(tmp_path / "ok.jpg", quality=95)
    jpg = (tmp_path / "ok.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(jpg[: len(jpg) // 2])
    with pytest.raises(ValueError, match=r"cut\.jpg: cannot read image"):
        read_image(tmp_path / "cut.jpg")
    (tmp_path / "text.png").write_text("not an image")
    with pytest.raises(ValueError, match=r"text\.png: cannot read image"):
        read_image(tmp_path / "text.png")
    with pytest.raises(ValueError, match=r"text\.png: cannot read image"):
        image_size(tmp_path / "text.png")
    with pytest.raises(ValueError, match="no such file"):
        read_image(tmp_path / "missing.png")
    (tmp_path / "bad.tif").write_bytes(b"II*\x00garbage")
    with pytest.raises(ValueError, match=r"bad\.tif: cannot read image"):
        read_image(tmp_path / "bad.tif")


def test_image_size_reads_header(tmp_path: Path) -> None:
    Image.fromarray(np.zeros((11, 13, 3), np.uint8)).save(tmp_path / "a.jpg")
    assert image_size(tmp_path / "a.jpg") == (11, 13)
    assert is_image_file("x/Y.JPEG") and not is_image_file("labels.txt")
