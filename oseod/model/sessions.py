"""An operator console session, as the console reads it (the token itself
is never kept: oseod.store.sessions names a session by its digest)."""

from __future__ import annotations

import attrs


@attrs.frozen
class SessionRecord:
    token_digest: str
    user: str
    csrf: str = attrs.field(repr=False)
    created_at: float
    seen_at: float
    address: str = ""
