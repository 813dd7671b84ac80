"""Input rules shared by the services (docs/architecture.md §3); the rules of
particular ids live in the domains and the shared kernel."""

from __future__ import annotations

import re

from .errors import InvalidArgument

# C0/C1 control characters (NUL among them, which PostgreSQL refuses in text) have no
# place in a title or an id; printable Unicode is fine.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def text(value: str, field: str, max_len: int, required: bool = False) -> str:
    """A free-text field: at most max_len characters, no control characters."""
    value = value or ""
    if required and not value:
        raise InvalidArgument(f"{field} is required")
    if len(value) > max_len:
        raise InvalidArgument(f"{field} must be at most {max_len} characters")
    if _CONTROL.search(value):
        raise InvalidArgument(f"{field} must not contain control characters")
    return value
