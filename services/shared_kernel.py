"""The shared kernel: the few domain facts more than one service holds, written
once. Role names (the token's `roles` claim, docs/architecture.md §6) and the rule
for a book's id, which the stock and the reservation services both check."""

from __future__ import annotations

import re

from services.chassis.errors import InvalidArgument

CUSTOMER = "customer"  # reserves books
STOCK_MANAGER = "stock_manager"  # receives books into stock; reads everyone's reservations

_BOOK_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


def book_id(value: str) -> str:
    if not _BOOK_ID.fullmatch(value or ""):
        raise InvalidArgument("book_id must be 1 to 64 letters, digits, '-', '_' or '.'")
    return value
