"""Who is calling: the identity Envoy's jwt_authn verified and forwarded as metadata
(`x-user-id`, `x-user-roles`), parsed once per call. Pure: no gRPC, no domain."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from .errors import InvalidArgument

MAX_USER_ID = 128


@dataclasses.dataclass(frozen=True)
class Identity:
    """Who is calling, as verified by Envoy's jwt_authn and forwarded as metadata."""

    user_id: str
    roles: frozenset[str]

    def has_role(self, role: str) -> bool:
        return role in self.roles


def from_metadata(metadata: Mapping[str, str]) -> Identity | None:
    """The caller named by the forwarded metadata; None when it names nobody."""
    user = metadata.get("x-user-id", "").strip()
    if not user:
        return None
    if len(user) > MAX_USER_ID:
        raise InvalidArgument(f"the token's subject must be at most {MAX_USER_ID} characters")
    roles = frozenset(r.strip() for r in metadata.get("x-user-roles", "").split(",") if r.strip())
    return Identity(user, roles)
