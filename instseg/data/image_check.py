"""Cheap up-front checks that image files are whole, so a damaged file is found before training, not mid-epoch.

Decoding every image of a large data set at start-up would cost minutes, so each format is checked from its
structure: a PNG must end with its ``IEND`` chunk, a JPEG with its end-of-image marker, a TIFF's strips/tiles
must lie inside the file; other formats (BMP, WebP, ...) are small and rare enough to be decoded in full. The
header's size is checked against the pixel limit of ``instseg.data.image_io``. Results are cached per process by
(path, size, modification time), so training, its validation set and ``info`` check each file once.
"""

from __future__ import annotations

from pathlib import Path

from instseg.data.image_io import PNG_SIGNATURE, TIFF_SUFFIXES, check_pixel_limit, image_size, read_image

JPEG_TAIL = 4096  # bytes at the end of a JPEG searched for its end-of-image marker (padding may follow it)

_cache: dict[tuple[str, int, int], str | None] = {}


def image_file_fault(path: str | Path) -> str | None:
    """Why the image file at ``path`` cannot be used (missing, empty, truncated, too large, undecodable), or None."""
    path = Path(path)
    try:
        stat = path.stat()
    except OSError:
        return f"image file {path} not found"
    if not path.is_file():
        return f"{path} is not a file"
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _cache:
        _cache[key] = _fault(path, stat.st_size)
    return _cache[key]


def _fault(path: Path, size: int) -> str | None:
    """The uncached check of one file."""
    if size == 0:
        return f"{path}: empty file (0 bytes)"
    try:
        with path.open("rb") as f:
            head = f.read(16)
            f.seek(max(0, size - JPEG_TAIL))
            tail = f.read()
    except OSError as err:
        return f"{path}: cannot read ({err})"
    try:
        if head.startswith(PNG_SIGNATURE):
            if not tail.endswith(b"IEND\xae\x42\x60\x82"):
                return f"{path}: truncated PNG (no IEND chunk at its end)"
            height, width = image_size(path)
            check_pixel_limit(path, height, width)
            return None
        if head.startswith(b"\xff\xd8\xff"):
            if b"\xff\xd9" not in tail:
                return f"{path}: truncated JPEG (no end-of-image marker)"
            height, width = image_size(path)
            check_pixel_limit(path, height, width)
            return None
        if path.suffix.lower() in TIFF_SUFFIXES or head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
            return _tiff_fault(path, size)
        read_image(path)  # other formats: a full decode (also checks the pixel limit)
    except ValueError as err:
        return str(err) if str(err).startswith(f"{path}:") else f"{path}: cannot read image ({err})"
    return None


def _tiff_fault(path: Path, size: int) -> str | None:
    """A TIFF whose image data (strips or tiles of its pages) reaches past the end of the file is truncated."""
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            if not tif.series:
                return f"{path}: TIFF holds no image data"
            height, width = image_size(path)
            check_pixel_limit(path, height, width)
            for page in tif.pages:
                offsets = getattr(page, "dataoffsets", ()) or ()
                counts = getattr(page, "databytecounts", ()) or ()
                for offset, count in zip(offsets, counts, strict=False):
                    if offset + count > size:
                        return f"{path}: truncated TIFF (image data runs to byte {offset + count}, file has {size})"
    except ValueError as err:  # tifffile's TiffFileError is one; ours already name the file
        return str(err) if str(err).startswith(f"{path}:") else f"{path}: cannot read image ({err})"
    except Exception as err:  # tifffile raises many exception types for corrupt files
        return f"{path}: cannot read image ({type(err).__name__}: {err})"
    return None
