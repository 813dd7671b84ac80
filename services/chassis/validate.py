"""Input rules from the architecture page, shared by the services."""
from __future__ import annotations

import re

from .errors import InvalidArgument

_BOOK_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


def book_id(value: str) -> str:
    if not _BOOK_ID.fullmatch(value or ""):
        raise InvalidArgument("book_id must be 1 to 64 letters, digits, '-', '_' or '.'")
    return value


def reservation_id(value: str) -> str:
    if not value or len(value) > 64:
        raise InvalidArgument("reservation_id must be 1 to 64 characters")
    return value
