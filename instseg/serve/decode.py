"""Uploaded bytes -> an image array, by the same conversion rule as every file reader (``instseg.data.image_io``).

The format is recognised from the first bytes (never from a client's file name or content type), the pixel
count is read from the header and checked before anything is decoded (a small compressed file can expand to
gigabytes), and only then is the image decoded. The faults map to HTTP statuses: not a supported image ->
415, a supported format that fails to decode -> 422, too many pixels -> 413.
"""

from __future__ import annotations

import base64
import binascii
import io

import numpy as np

from instseg.serve.errors import ApiError

SUPPORTED = "PNG, JPEG, TIFF, BMP or WebP"
TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


class NamedBytes(io.BytesIO):
    """An uploaded file held in memory, usable where the readers take a file path (``open``, ``read_bytes``) or a
    file object, and printing as its upload name, so decoder messages name the upload and never a server path.
    The server writes no temporary files."""

    def __init__(self, data: bytes, name: str) -> None:
        super().__init__(data)
        self.upload_name = name
        self.data = data

    def open(self, mode: str = "rb") -> NamedBytes:
        """A fresh reader over the same bytes (the ``Path.open`` of a file on disk)."""
        if mode != "rb":
            raise ValueError(f"{self.upload_name}: an upload can only be read")
        return NamedBytes(self.data, self.upload_name)

    def read_bytes(self) -> bytes:
        """All the bytes (the ``Path.read_bytes`` of a file on disk)."""
        return self.data

    def __str__(self) -> str:
        return self.upload_name

    __repr__ = __str__


def sniff_format(data: bytes) -> str | None:
    """``png``/``jpeg``/``tiff``/``bmp``/``webp`` from the magic bytes, or None when none matches."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data[:4] in TIFF_MAGIC:
        return "tiff"
    if data.startswith(b"BM"):
        return "bmp"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def _header_size(data: bytes, kind: str, name: str) -> tuple[int, int]:
    """``(height, width)`` from the header alone (no pixel decoding)."""
    if kind == "png":  # the IHDR chunk always comes first: its size is read without any decoder
        if len(data) < 24 or data[12:16] != b"IHDR":
            raise ApiError(422, f"{name}: the PNG header is truncated or has no IHDR chunk")
        return int.from_bytes(data[20:24], "big"), int.from_bytes(data[16:20], "big")
    try:
        if kind == "tiff":
            import tifffile

            with tifffile.TiffFile(NamedBytes(data, name)) as tif:
                series = tif.series[0]
                dims = dict(zip(series.axes, series.shape, strict=True))
            return int(dims["Y"]), int(dims["X"])
        from PIL import Image

        with Image.open(NamedBytes(data, name)) as img:
            width, height = img.size
        return int(height), int(width)
    except ApiError:
        raise
    except Exception as err:  # decoders raise many exception types for corrupt headers
        if type(err).__name__ == "DecompressionBombError":  # Pillow refuses absurd sizes while opening
            raise ApiError(413, f"{name}: the image declares more pixels than any limit allows") from err
        raise ApiError(422, f"{name}: cannot read the {kind.upper()} header ({type(err).__name__})") from err


def decode_image(data: bytes, name: str, max_pixels: int) -> np.ndarray:
    """Decode an uploaded file to [H, W] or [H, W, C] in its own dtype (``ApiError`` 413/415/422 on faults)."""
    # the private readers are the one place that turns every Pillow mode / PNG depth / TIFF layout into an array;
    # reusing them on an in-memory file (``NamedBytes`` stands in for their path) keeps uploads and files on disk on
    # exactly the same rule, and tests/serve checks that they still accept it
    from instseg.data.image_io import _read_pillow, _read_tiff

    if not data:
        raise ApiError(422, f"{name}: the upload is empty")
    kind = sniff_format(data)
    if kind is None:
        raise ApiError(415, f"{name}: not a supported image (send {SUPPORTED})")
    height, width = _header_size(data, kind, name)
    if height * width > max_pixels:
        raise ApiError(413, f"{name}: {width}x{height} = {height * width} pixels, over the limit of {max_pixels}")
    if height < 1 or width < 1:
        raise ApiError(422, f"{name}: the image has no pixels ({width}x{height})")
    try:
        array = _read_tiff(NamedBytes(data, name)) if kind == "tiff" else _read_pillow(NamedBytes(data, name))  # type: ignore[arg-type]
    except ValueError as err:
        if "exceeds the limit" in str(err):  # the readers' own pixel guard, when it is lower than max_pixels
            raise ApiError(413, f"{name}: {width}x{height} pixels is over the readers' limit") from err
        raise ApiError(422, str(err)) from err
    if (array.ndim == 3 and array.shape[2] > 4) or array.ndim not in (2, 3):
        raise ApiError(422, f"{name}: image of shape {tuple(array.shape)} is not a single 2-D image")
    return array


def decode_base64(text: str, name: str) -> bytes:
    """Bytes of a base64 string (a ``data:image/...;base64,`` prefix is allowed); ``ApiError`` 422 if invalid."""
    if text.startswith("data:"):
        text = text.partition(",")[2]
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as err:
        raise ApiError(422, f"{name}: the 'image' field is not valid base64") from err


def clean_name(name: str | None) -> str:
    """A short printable upload name for messages (the client's file name, or ``upload``)."""
    if not name:
        return "upload"
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in base if ch.isprintable())[:80]
    return base or "upload"
