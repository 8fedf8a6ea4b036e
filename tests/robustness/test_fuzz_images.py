"""Generated bad image files: each is refused with a ValueError naming the file (or read by the documented rule),
never another exception, never a hang, and the file itself is left unchanged."""

from __future__ import annotations

import hashlib
import io
import zlib
from pathlib import Path

import imagecodecs
import numpy as np
import pytest
import tifffile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from instseg.data.image_check import image_file_fault
from instseg.data.image_io import MAX_PIXELS_ENV, read_image, to_rgb_uint8

RNG = np.random.default_rng(7)
PIXELS = RNG.integers(0, 255, (24, 32, 3), dtype=np.uint8)


def _encoded(fmt: str) -> bytes:
    """A valid small image file of format ``fmt``."""
    buf = io.BytesIO()
    if fmt == "tif":
        tifffile.imwrite(buf, PIXELS)
    else:
        Image.fromarray(PIXELS).save(buf, format={"png": "PNG", "jpg": "JPEG", "bmp": "BMP", "webp": "WEBP"}[fmt])
    return buf.getvalue()


VALID = {fmt: _encoded(fmt) for fmt in ("png", "jpg", "tif", "bmp", "webp")}


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _refused(path: Path) -> str:
    """The fault found up front, checked to be the one ``read_image`` also raises on, both naming the file."""
    before = _digest(path)
    fault = image_file_fault(path)
    try:
        read_image(path)
        decoded = True
    except ValueError as err:
        assert str(path) in str(err)
        decoded = False
    assert _digest(path) == before
    if fault is not None:
        assert str(path) in fault
    assert fault is None or not decoded or path.suffix in (".jpg",), f"{path}: checked faulty but decodes"
    return fault or ""


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fmt=st.sampled_from(sorted(VALID)), cut=st.floats(0.0, 0.98))
def test_truncated_images_are_named(tmp_path: Path, fmt: str, cut: float) -> None:
    data = VALID[fmt]
    path = tmp_path / f"cut.{fmt}"
    path.write_bytes(data[: int(len(data) * cut)])
    fault = image_file_fault(path)
    assert fault is not None and str(path) in fault, f"{fmt} cut at {cut:.2f} passed the up-front check"
    with pytest.raises(ValueError, match="cut"):
        read_image(path)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fmt=st.sampled_from(sorted(VALID)), position=st.floats(0.0, 0.99), value=st.integers(0, 255))
def test_corrupted_bytes_never_raise_anything_but_a_named_value_error(
    tmp_path: Path, fmt: str, position: float, value: int
) -> None:
    data = bytearray(VALID[fmt])
    data[int(len(data) * position)] = value
    path = tmp_path / f"flip.{fmt}"
    path.write_bytes(bytes(data))
    _refused(path)  # decodes (a flipped pixel byte) or a named ValueError; nothing else


def test_empty_file_and_wrong_extension(tmp_path: Path) -> None:
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    assert "empty file (0 bytes)" in (image_file_fault(empty) or "")
    with pytest.raises(ValueError, match=r"empty\.png"):
        read_image(empty)
    jpeg_named_png = tmp_path / "really_a_jpeg.png"
    jpeg_named_png.write_bytes(VALID["jpg"])
    assert image_file_fault(jpeg_named_png) is None  # decoded by content, not by its name
    assert read_image(jpeg_named_png).shape == (24, 32, 3)
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    assert "notes.png" in (image_file_fault(text) or "")


def test_16_bit_rgb_png_follows_the_percentile_rule(tmp_path: Path) -> None:
    twelve_bit = RNG.integers(0, 4096, (16, 20, 3)).astype(np.uint16)  # 12-bit camera data in a 16-bit file
    path = tmp_path / "rgb16.png"
    path.write_bytes(imagecodecs.png_encode(twelve_bit))
    got = read_image(path)
    assert np.array_equal(got, to_rgb_uint8(twelve_bit))  # not the high byte (which would be 0..15)
    assert got.max() == 255 and got.min() == 0
    rgba = np.concatenate([twelve_bit, np.full((16, 20, 1), 65535, np.uint16)], axis=2)
    path.write_bytes(imagecodecs.png_encode(rgba))
    assert np.array_equal(read_image(path), to_rgb_uint8(twelve_bit))


def test_cmyk_palette_and_multi_frame(tmp_path: Path) -> None:
    cmyk = tmp_path / "cmyk.jpg"
    Image.fromarray(PIXELS).convert("CMYK").save(cmyk)
    assert read_image(cmyk).shape == (24, 32, 3)
    palette = tmp_path / "palette.png"
    Image.fromarray(PIXELS).convert("P").save(palette)
    assert read_image(palette).shape == (24, 32, 3) and image_file_fault(palette) is None
    frames = [Image.fromarray(PIXELS), Image.fromarray(255 - PIXELS)]
    gif = tmp_path / "two.gif"
    frames[0].save(gif, save_all=True, append_images=frames[1:])
    with pytest.raises(ValueError, match=r"two\.gif.*2 frames"):
        read_image(gif)
    stack = tmp_path / "stack.tif"
    tifffile.imwrite(stack, np.stack([PIXELS[..., 0]] * 5))
    with pytest.raises(ValueError, match=r"stack\.tif"):
        read_image(stack)


def _png_with_header(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height`` (a decompression bomb's shape)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return len(body).to_bytes(4, "big") + kind + body + zlib.crc32(kind + body).to_bytes(4, "big")

    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 0, 0, 0, 0])
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")
    )


def test_decompression_bombs_are_refused_before_decoding(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bomb_png = tmp_path / "bomb.png"
    bomb_png.write_bytes(_png_with_header(30000, 30000))
    bomb_tif = tmp_path / "bomb.tif"
    tifffile.imwrite(bomb_tif, np.zeros((20000, 20000), np.uint8), compression="zlib")  # ~0.4 MB, 400 MP
    assert bomb_tif.stat().st_size < 2_000_000
    for bomb in (bomb_png, bomb_tif):
        with pytest.raises(ValueError, match=rf"{bomb.name}.*exceeds (the )?limit"):
            read_image(bomb)
        assert "exceeds" in (image_file_fault(bomb) or "")
    small = tmp_path / "small.png"
    small.write_bytes(VALID["png"])
    monkeypatch.setenv(MAX_PIXELS_ENV, "100")  # the limit is overridable (here lowered)
    with pytest.raises(ValueError, match="exceeds the limit of 100"):
        read_image(small)
    monkeypatch.setenv(MAX_PIXELS_ENV, "lots")
    with pytest.raises(ValueError, match=MAX_PIXELS_ENV):
        read_image(small)


@pytest.mark.parametrize(
    "array",
    [np.zeros((0, 0, 3), np.uint8), np.zeros((0, 5), np.uint8), np.zeros((4, 0, 3), np.uint8)],
    ids=["0x0x3", "0x5", "4x0x3"],
)
def test_empty_arrays_through_the_python_api(array: np.ndarray) -> None:
    with pytest.raises(ValueError, match="empty"):
        to_rgb_uint8(array)


def test_non_numeric_arrays_through_the_python_api() -> None:
    with pytest.raises(TypeError, match="numeric"):
        to_rgb_uint8(np.array([["a", "b"]]))
    with pytest.raises(TypeError, match="image array"):
        to_rgb_uint8("cells.png")  # type: ignore[arg-type]
