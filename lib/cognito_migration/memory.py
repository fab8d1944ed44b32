"""Memory a large phase freed, given back to the system before the next phase takes its own.

A step's phases (a pool's read, the comparison, the import file, the sign-up index) each free what they held
when they end, but the allocators keep it: Arrow's (mimalloc) holds freed pages for reuse, and glibc's malloc
keeps freed memory of its heap and arenas until trimmed. Measured at 1M users, after step 5's comparison: 552 MB
resident, 354 MB once both gave back. Without this the phases' peaks stack instead of taking turns.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from collections.abc import Callable

import pyarrow as pa


def give_back() -> None:
    """Returns to the system what Arrow's memory pool and the C heap hold unused (where the C library can)."""
    pa.default_memory_pool().release_unused()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's malloc_trim; None where the C library has none (musl, macOS)."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        trim: Callable[[int], int] = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None
    return trim
