"""``ServeSettings``: the limits and batching knobs of one server, stated once and shared by the app and the CLI."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

MASK_FORMATS = ("rle", "polygon", "png")


@dataclass(frozen=True)
class ServeSettings:
    """How a server batches requests and what it accepts.

    ``max_batch`` images at most go through the model together; a batch waits at most ``batch_timeout_ms``
    for more requests after its first one. At most ``queue_size`` images wait for the model; beyond that a
    request gets 503 with ``Retry-After: retry_after_s``. Bodies over ``max_upload_mb`` and images with more
    than ``max_pixels`` pixels get 413. When ``api_keys`` is not empty every ``/v1/*`` and ``/metrics``
    request must carry one of them (``Authorization: Bearer KEY`` or ``X-API-Key: KEY``), else 401.
    """

    max_batch: int = 8
    batch_timeout_ms: float = 10.0
    queue_size: int = 64
    retry_after_s: int = 1
    max_upload_mb: float = 20.0
    max_pixels: int = 40_000_000
    max_instances: int = 1000  # default of the ``max_instances`` query option
    api_keys: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        if self.max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {self.max_batch}")
        if self.batch_timeout_ms < 0:
            raise ValueError(f"batch_timeout_ms must be >= 0, got {self.batch_timeout_ms}")
        if self.queue_size < 1:
            raise ValueError(f"queue_size must be at least 1, got {self.queue_size}")
        if self.max_upload_mb <= 0 or self.max_pixels < 1 or self.max_instances < 0:
            raise ValueError(
                f"limits must be positive, got max_upload_mb={self.max_upload_mb}, max_pixels={self.max_pixels}, "
                f"max_instances={self.max_instances}"
            )

    @property
    def max_upload_bytes(self) -> int:
        """The body limit in bytes."""
        return int(self.max_upload_mb * 2**20)


def read_api_keys(path: Path) -> frozenset[str]:
    """API keys from a text file: one key per line; blank lines and lines starting with ``#`` are skipped."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: cannot read the API key file ({err})") from err
    keys = frozenset(line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#"))
    if not keys:
        raise ValueError(f"{path}: the API key file holds no key (one key per line)")
    short = [k for k in keys if len(k) < 16]
    if short:
        raise ValueError(f"{path}: {len(short)} API key(s) shorter than 16 characters; use long random keys")
    return keys
