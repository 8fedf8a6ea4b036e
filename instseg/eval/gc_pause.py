"""Pausing Python's cyclic garbage collector while an evaluation builds many small containers.

Loading a results file and indexing it creates millions of dicts and lists that hold no reference cycles; each
allocation burst triggers a collection that re-scans everything alive, which took about as long as the AP
computation itself (50k masks). Reference counting still frees everything; collection resumes afterwards.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused_gc() -> Iterator[None]:
    """Disable the cyclic collector inside the block (restoring its previous state, nesting allowed)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
