"""Reading images from disk as 3-channel uint8 arrays, with one documented conversion rule for every input kind.

The conversion rule (``to_rgb_uint8``), applied after decoding:
  - palette images (Pillow mode ``P``/``PA``) are expanded to RGB by Pillow while reading;
  - an alpha channel (RGBA, LA) is dropped, not composited: annotations refer to the stored pixels;
  - a single grey channel is replicated to 3 channels, so every model sees ``[H, W, 3]``;
  - ``uint8`` values are kept as they are;
  - any other integer type (16/32-bit) and floats are rescaled linearly so that the image's 0.1 and 99.9
    percentiles map to 0 and 255 (clipped). Microscopy cameras write 12/16-bit images that use a small
    part of the 0..65535 range, so a fixed ``/ 257`` would give near-black images; the percentiles are taken
    over all channels together (keeps colour balance) and ignore NaNs (NaN becomes 0). A constant image
    becomes all zeros.
EXIF orientation is not applied: COCO-style annotations refer to the pixels as stored in the file.
TIFF files are read with tifffile (scientific TIFFs: 16-bit, float, channel-first), 16-bit-per-channel colour PNGs
with imagecodecs (Pillow keeps only their high byte, which would bypass the percentile rule), others with Pillow.
Stacks (several pages, Z/T axes, more than 4 channels) are refused with a ``ValueError`` naming the file.

Pixel limit: every reader checks the image's size from its header before decoding it and refuses (``ValueError``
naming the file) an image of more than ``max_image_pixels()`` pixels, so a small crafted file (a "decompression
bomb") cannot exhaust memory. The default is ``DEFAULT_MAX_PIXELS`` (about 180 megapixels, Pillow's own hard
limit); the environment variable ``INSTSEG_MAX_IMAGE_PIXELS`` overrides it (``0`` = no limit). Larger slides are
read tile by tile, not through this module.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

# the one conversion rule lives in the torch-free runtime, so that exported models see exactly the same pixels
from instseg_runtime.image import PERCENTILES as PERCENTILES  # re-exported: the slide reader uses it
from instseg_runtime.image import to_rgb_uint8 as to_rgb_uint8

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")
TIFF_SUFFIXES = (".tif", ".tiff")
DEFAULT_MAX_PIXELS = 178_956_970  # Pillow's DecompressionBombError threshold (2 x its warning limit)
MAX_PIXELS_ENV = "INSTSEG_MAX_IMAGE_PIXELS"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def max_image_pixels() -> int | None:
    """The pixel limit of every reader (``INSTSEG_MAX_IMAGE_PIXELS`` or the default); None when switched off."""
    text = os.environ.get(MAX_PIXELS_ENV, "").strip()
    if not text:
        return DEFAULT_MAX_PIXELS
    try:
        value = int(text.replace("_", ""))
    except ValueError as err:
        raise ValueError(
            f"environment {MAX_PIXELS_ENV}={text!r}: expected a whole number of pixels (0 = no limit)"
        ) from err
    if value < 0:
        raise ValueError(f"environment {MAX_PIXELS_ENV}={text!r}: expected a number >= 0 (0 = no limit)")
    return value or None


def check_pixel_limit(path: Path, height: int, width: int) -> None:
    """Refuse (ValueError naming the file) an image larger than ``max_image_pixels()`` before it is decoded."""
    limit = max_image_pixels()
    if limit is not None and height * width > limit:
        raise ValueError(
            f"{path}: cannot read image ({width}x{height} = {height * width} pixels exceeds the limit of {limit}; "
            f"set {MAX_PIXELS_ENV} to raise it, 0 for none)"
        )


def _png_header(path: Path) -> tuple[int, int, int, int] | None:
    """``(height, width, bit depth, colour type)`` from a PNG's IHDR chunk, or None for a file that is not PNG."""
    with path.open("rb") as f:
        head = f.read(33)
    if len(head) < 29 or not head.startswith(PNG_SIGNATURE) or head[12:16] != b"IHDR":
        return None
    width, height = int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
    return height, width, head[24], head[25]


def is_image_file(path: str | Path) -> bool:
    """Whether ``path`` has one of the image suffixes this module reads (case-insensitive)."""
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file as [H, W, 3] uint8 (see the module docstring for the conversion rule).

    Raises ``ValueError("<path>: cannot read image (<reason>)")`` for missing, truncated or unsupported files.
    """
    return to_rgb_uint8(read_image_raw(path))


def read_image_raw(path: str | Path) -> np.ndarray:
    """Read an image file as stored: [H, W] or [H, W, C] in its own dtype (palette already expanded to RGB)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: cannot read image (no such file)")
    if path.suffix.lower() in TIFF_SUFFIXES:
        return _read_tiff(path)
    return _read_pillow(path)


def _read_pillow(path: Path) -> np.ndarray:
    """Decode a PNG/JPEG/BMP/WebP file fully with Pillow (truncated files raise, they are never padded)."""
    from PIL import Image

    png = _png_header(path)
    if png is not None:
        check_pixel_limit(path, png[0], png[1])
        if png[2] == 16 and png[3] in (2, 6):  # 16 bits per channel RGB / RGBA
            return _read_png16(path)
    Image.MAX_IMAGE_PIXELS = max_image_pixels()  # Pillow's own guard follows ours (it refuses at twice the value)
    try:
        with Image.open(path) as img:
            check_pixel_limit(path, img.size[1], img.size[0])
            n_frames = int(getattr(img, "n_frames", 1))
            if n_frames > 1:
                raise ValueError(f"{path}: cannot read image (it holds {n_frames} frames; only single images)")
            img.load()
            if img.mode in ("P", "PA", "CMYK", "YCbCr", "LAB", "HSV"):
                img = img.convert("RGBA" if img.mode == "PA" or "transparency" in img.info else "RGB")
            elif img.mode == "1":
                img = img.convert("L")
            elif img.mode.startswith("I;16"):
                return np.asarray(img).astype(np.uint16)
            return np.asarray(img)
    except ValueError as err:
        if str(err).startswith(f"{path}:"):
            raise
        raise ValueError(f"{path}: cannot read image ({err})") from err
    except (OSError, SyntaxError, Image.DecompressionBombError) as err:
        raise ValueError(f"{path}: cannot read image ({err})") from err


def _read_png16(path: Path) -> np.ndarray:
    """Decode a 16-bit-per-channel colour PNG to [H, W, 3 or 4] uint16 with imagecodecs (libpng)."""
    import imagecodecs

    try:
        array = imagecodecs.png_decode(path.read_bytes())
    except Exception as err:  # imagecodecs raises its own PngError (and others) for corrupt data
        raise ValueError(f"{path}: cannot read image ({type(err).__name__}: {err})") from err
    if array.ndim != 3 or array.shape[2] not in (3, 4):
        raise ValueError(f"{path}: cannot read image (unexpected 16-bit PNG shape {tuple(array.shape)})")
    return array


def _read_tiff(path: Path) -> np.ndarray:
    """Read a single 2-D TIFF image (grey or up to 4 channels, channels first or last) with tifffile."""
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            if len(tif.series) == 0:
                raise ValueError("no image data")
            series = tif.series[0]
            axes, shape = series.axes, tuple(series.shape)
            if len(tif.series) > 1 or (len(tif.pages) > 1 and len(shape) > 3):
                raise ValueError(f"it holds {max(len(tif.series), len(tif.pages))} images; only single 2-D images")
            dims = dict(zip(axes, shape, strict=True))
            check_pixel_limit(path, int(dims.get("Y", 1)), int(dims.get("X", 1)))
            array = series.asarray()
    except ValueError as err:
        if str(err).startswith(f"{path}:"):
            raise
        raise ValueError(f"{path}: cannot read image ({err})") from err
    except Exception as err:  # tifffile raises many exception types for corrupt files (TiffFileError, struct...)
        raise ValueError(f"{path}: cannot read image ({type(err).__name__}: {err})") from err
    return _tiff_to_hwc(array, axes, path)


def _tiff_to_hwc(array: np.ndarray, axes: str, path: Path) -> np.ndarray:
    """Reorder a TIFF array with tifffile ``axes`` (e.g. ``YX``, ``YXS``, ``CYX``) to [H, W] or [H, W, C]."""
    keep = [i for i, (ax, n) in enumerate(zip(axes, array.shape, strict=True)) if n > 1 or ax in "YX"]
    array = array.reshape([array.shape[i] for i in keep])
    axes = "".join(axes[i] for i in keep)
    if axes == "YX":
        return array
    if len(axes) == 3 and axes[1:] == "YX" and axes[0] in "CS" and array.shape[0] <= 4:
        return np.moveaxis(array, 0, -1)
    if len(axes) == 3 and axes[:2] == "YX" and axes[2] in "CS" and array.shape[2] <= 4:
        return array
    raise ValueError(
        f"{path}: cannot read image (axes {axes} with shape {tuple(array.shape)}: multi-page, Z/T stacks and "
        "more than 4 channels are not single 2-D images)"
    )


def image_size(path: str | Path) -> tuple[int, int]:
    """``(height, width)`` of an image file, read from its header only (no pixel decoding)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: cannot read image (no such file)")
    if path.suffix.lower() in TIFF_SUFFIXES:
        import tifffile

        try:
            with tifffile.TiffFile(path) as tif:
                series = tif.series[0]
                dims = dict(zip(series.axes, series.shape, strict=True))
        except Exception as err:  # corrupt TIFF headers raise many exception types
            raise ValueError(f"{path}: cannot read image ({type(err).__name__}: {err})") from err
        if "Y" not in dims or "X" not in dims:
            raise ValueError(f"{path}: cannot read image (axes {series.axes} have no Y and X)")
        return int(dims["Y"]), int(dims["X"])
    from PIL import Image

    png = _png_header(path)
    if png is not None:  # read directly: Pillow refuses to even open a PNG claiming a huge size
        return png[0], png[1]
    try:
        with Image.open(path) as img:
            width, height = img.size
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise ValueError(f"{path}: cannot read image ({err})") from err
    return int(height), int(width)
