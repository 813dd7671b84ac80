"""Native thread names: Python 3.11 keeps a thread's name to itself, so `top -H`,
`ps -L` and per-thread CPU in /proc showed every one of ours as "python". The
kernel's name (15 bytes) is set from the Python one when the thread starts."""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
from collections.abc import Callable
from typing import Any

_PR_SET_NAME = 15
_prctl: Callable[..., Any] | None
try:
    _prctl = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True).prctl
except (OSError, AttributeError):  # not Linux: names stay Python-only
    _prctl = None


def name_native_thread(name: str | None = None) -> None:
    """Gives the calling thread's kernel-visible name (its Python name by default)."""
    if _prctl is not None:
        _prctl(_PR_SET_NAME, (name or threading.current_thread().name).encode()[:15], 0, 0, 0)
