"""AIP-158 paging with an opaque page_token (an offset, base64-encoded)."""

from __future__ import annotations

import base64

from .errors import InvalidArgument

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 100  # a larger page_size is lowered to this (AIP-158)
MAX_PAGE_TOKEN = 64  # ours are ~12 characters; anything longer is not ours
MAX_OFFSET = 10**9  # a forged huge offset would overflow the database's integers


def page(page_size: int, page_token: str) -> tuple[int, int]:
    """Returns (offset, limit) or raises InvalidArgument."""
    if page_size < 0:
        raise InvalidArgument("page_size must not be negative")
    limit = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    if not page_token:
        return 0, limit
    if len(page_token) > MAX_PAGE_TOKEN:
        raise InvalidArgument("page_token is not one this service issued")
    try:
        kind, _, raw = base64.urlsafe_b64decode(page_token.encode()).decode().partition(":")
        offset = int(raw)
        if kind != "o" or not 0 <= offset <= MAX_OFFSET:
            raise ValueError
    except (ValueError, UnicodeDecodeError):
        raise InvalidArgument("page_token is not one this service issued") from None
    return offset, limit


def next_token(offset: int, limit: int, got: int) -> str:
    if got < limit:
        return ""
    return base64.urlsafe_b64encode(f"o:{offset + limit}".encode()).decode()
