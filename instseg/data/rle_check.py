"""Validation of many COCO RLEs at once, before any C decoder sees them (a malformed string can hang it).

A compressed ``counts`` string is valid when every character is in COCO's alphabet (``'0'..'o'``), its last
number is complete, no count exceeds 35 bits, no run is negative, and the runs sum to ``h * w``. The single-string
reference is ``instseg.data.rle_runs.compressed_rle_counts``; this module applies the same decoding to all the
strings of a file in one pass of numpy operations, because checking 50k results one string at a time would cost
more than the evaluation itself. ``describe_counts_fault`` names the fault of one string for the message.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from instseg.data.rle_runs import compressed_rle_counts

MAX_CHUNKS = 7  # 7 chunks of 5 bits = 35 bits: more than any real image's pixel count
CHUNK_CHARS = 1 << 20  # characters decoded per vectorised pass (about 60 MB of temporaries)


def _encoded(counts: Sequence[str | bytes]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(bytes [L] uint8 of all strings joined, lengths [N], unusable [N] bool)``; non-ASCII strings are unusable."""
    n = len(counts)
    unusable = np.zeros(n, dtype=bool)
    if all(type(c) is str for c in counts):
        text = "".join(counts)  # type: ignore[arg-type]
        if text.isascii():
            lengths = np.fromiter((len(c) for c in counts), dtype=np.int64, count=n)
            return np.frombuffer(text.encode("ascii"), dtype=np.uint8), lengths, unusable
    parts: list[bytes] = []
    for i, c in enumerate(counts):
        if isinstance(c, bytes):
            parts.append(c)
        elif isinstance(c, str) and c.isascii():
            parts.append(c.encode("ascii"))
        else:
            unusable[i] = True
            parts.append(b"")
    lengths = np.fromiter((len(p) for p in parts), dtype=np.int64, count=n)
    return np.frombuffer(b"".join(parts), dtype=np.uint8), lengths, unusable


def compressed_rle_faults(counts: Sequence[str | bytes], pixels: Sequence[int] | np.ndarray) -> np.ndarray:
    """Which of the compressed RLE strings are invalid for images of ``pixels[i] = h * w``: bool [N].

    Same rules (and the same answers) as checking ``compressed_rle_counts(counts[i])`` is not None, its runs are
    non-negative and sum to ``pixels[i]``, for every string, but vectorised (see ``check_compressed_rles``).
    """
    return check_compressed_rles(counts, pixels)[0]


def check_compressed_rles(
    counts: Sequence[str | bytes], pixels: Sequence[int] | np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``(invalid bool [N], foreground pixel counts int64 [N])`` of compressed RLE strings, decoded in vectorised
    passes over batches of about ``CHUNK_CHARS`` characters (memory stays bounded whatever the file holds);
    the pixel count of an invalid string is meaningless."""
    n = len(counts)
    expected = np.asarray(pixels, dtype=np.int64).reshape(n)
    bad = np.zeros(n, dtype=bool)
    areas = np.zeros(n, dtype=np.int64)
    begin, size = 0, 0
    for i, c in enumerate(counts):
        size += len(c) if isinstance(c, str | bytes) else 0
        if size >= CHUNK_CHARS or i == n - 1:
            bad[begin : i + 1], areas[begin : i + 1] = _faults(counts[begin : i + 1], expected[begin : i + 1])
            begin, size = i + 1, 0
    return bad, areas


def _faults(counts: Sequence[str | bytes], expected: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``check_compressed_rles`` of one batch: a few uint8 passes per character, the decoding runs per number
    (a number is 1-7 characters) and per string."""
    n = len(counts)
    raw, lengths, bad = _encoded(counts)
    bad = bad | (lengths == 0)
    if raw.size == 0:
        return bad | (expected != 0), np.zeros(n, dtype=np.int64)
    code = raw - np.uint8(48)  # wraps below '0' to >= 208: caught by the alphabet test
    nonempty = np.flatnonzero(lengths > 0)
    last = (np.cumsum(lengths) - 1)[nonempty]  # last character of each non-empty string
    out_of_alphabet = code > 63
    if out_of_alphabet.any():
        bad[np.unique(np.repeat(np.arange(n), lengths)[out_of_alphabet])] = True
        code[out_of_alphabet] = 0
    ends = code < 32  # bit 0x20 clear: the last chunk of a number
    bad[nonempty] |= ~ends[last]  # the string stops inside a number
    ends[last] = True  # numbers never run across strings (those strings are already marked bad)
    number_ends = np.flatnonzero(ends)  # [M] global, sorted
    numbers_per_string = np.zeros(n, dtype=np.int64)
    numbers_per_string[nonempty] = np.diff(np.searchsorted(number_ends, last, side="right"), prepend=0)
    first_number = np.cumsum(numbers_per_string) - numbers_per_string  # [N]
    chunks = np.diff(number_ends, prepend=-1)  # [M] chunks per number
    values = (code[number_ends - chunks + 1] & np.uint8(0x1F)).astype(np.int64)  # [M] from each first chunk
    has = np.flatnonzero(chunks > 1)
    for k in range(1, MAX_CHUNKS):
        if has.size == 0:
            break
        values[has] |= (code[number_ends[has] - chunks[has] + 1 + k] & np.uint8(0x1F)).astype(np.int64) << (5 * k)
        has = has[chunks[has] > k + 1]
    if has.size:  # numbers longer than MAX_CHUNKS
        bad[np.unique(np.searchsorted(first_number + numbers_per_string, has, side="right"))] = True
    negative = np.flatnonzero(code[number_ends] & np.uint8(0x10))
    values[negative] -= np.int64(1) << (5 * np.minimum(chunks[negative], MAX_CHUNKS))
    # Counts after the third are stored as differences to the count two places earlier (COCO maskApi.c):
    # within each string, runs of odd index (and of even index >= 2) are cumulative sums of the stored values.
    index = np.arange(values.size) - np.repeat(first_number, numbers_per_string)  # [M] index inside its string
    odd = (index & 1).astype(bool)
    runs = values
    for member in (odd, ~odd & (index >= 2)):
        cumulative = np.cumsum(np.where(member, values, 0))
        before = np.concatenate([[0], cumulative])[first_number]  # [N] sums of the earlier strings
        runs = np.where(member, cumulative - np.repeat(before, numbers_per_string), runs)
    has_numbers = numbers_per_string > 0
    starts = first_number[has_numbers]
    totals = np.zeros(n, dtype=np.int64)
    totals[has_numbers] = np.add.reduceat(runs, starts)  # exact int64 sums per string
    lowest = np.zeros(n, dtype=np.int64)
    lowest[has_numbers] = np.minimum.reduceat(runs, starts)
    areas = np.zeros(n, dtype=np.int64)
    areas[has_numbers] = np.add.reduceat(np.where(odd, runs, 0), starts)  # foreground runs are the odd ones
    return bad | ~has_numbers | (totals != expected) | (lowest < 0), areas


def describe_counts_fault(counts: str | bytes, height: int, width: int) -> str:
    """Why one compressed RLE string is invalid for an ``height`` x ``width`` image (or '' when it is valid)."""
    if isinstance(counts, str) and not counts.isascii():
        return "compressed RLE 'counts' holds non-ASCII characters"
    if len(counts) == 0:
        return "compressed RLE 'counts' is empty"
    runs = compressed_rle_counts(counts)
    if runs is None:
        return "compressed RLE 'counts' is not a valid COCO RLE string"
    if runs.size and runs.min() < 0:
        return "compressed RLE 'counts' decodes to a negative run length"
    if int(runs.sum()) != height * width:
        return f"compressed RLE counts sum to {int(runs.sum())}, expected {height}*{width} = {height * width}"
    return ""
