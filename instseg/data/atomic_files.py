"""Atomic file writes: a temporary file beside the target, flushed, then renamed over it.

A crash or kill mid-write therefore never leaves a truncated result. The temporary file is named
``.<name>.tmp-<pid>`` and created like any file the user writes (mode 0666 minus the umask: 0644 under the usual
umask 022, not the 0600 of ``tempfile.mkstemp``); one left behind by a killed writer (its process gone) is
removed the next time the same target is written.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import IO

_TMP = re.compile(r"\.(?P<name>.+)\.tmp-(?P<pid>\d+)")


def temporary_path(path: Path) -> Path:
    """The temporary file ``path`` is written through by this process."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def _process_alive(pid: int) -> bool:
    """Whether a process with this id exists (a signal 0 probe)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temporaries(path: Path) -> list[Path]:
    """Delete ``.<name>.tmp-<pid>`` files of ``path`` left by writers that no longer run; returns what went."""
    removed: list[Path] = []
    if not path.parent.is_dir():
        return removed
    for entry in path.parent.glob(f".{path.name}.tmp-*"):
        match = _TMP.fullmatch(entry.name)
        if match is None or match["name"] != path.name or not entry.is_file() or entry.is_symlink():
            continue
        pid = int(match["pid"])
        if pid != os.getpid() and _process_alive(pid):
            continue  # another writer is at work on it right now
        entry.unlink(missing_ok=True)
        removed.append(entry)
    return removed


def write_atomic(path: str | Path, write: Callable[[IO[bytes]], object]) -> Path:
    """Write ``path`` atomically: ``write(f)`` fills a binary temporary file, which is synced and renamed over it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    tmp = temporary_path(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)  # the umask applies, as for any user file
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
