"""An OAuth2 bearer token as a client presents it (the credentials of the
one Portal, checked by :class:`oseod.auth.bearer.BearerChecker`) and as the
daemon keeps it (the token itself is never kept: :mod:`oseod.store.tokens`
stores its SHA-256)."""

from __future__ import annotations

import attrs
from zope.interface import Attribute, Interface, implementer


class IBearerToken(Interface):
    """Credentials: an OAuth2 bearer token, as the client sent it."""

    token = Attribute("The token (str).")


@implementer(IBearerToken)
@attrs.frozen
class BearerToken:
    token: str = attrs.field(repr=False)


@attrs.frozen
class AccessToken:
    """``token_id``: the first 16 hex digits of the token's SHA-256, what
    operators see and may revoke it by; ``grant``: the OAuth2 grant it was
    issued for ("password", "client_credentials"); ``address``: the client's
    at issue; ``password_mark``: a digest of the password hash the user had
    at issue ("" for users with no record of ours), so that a new password
    voids the token; ``group``, ``admin``, ``email``: what the password
    source said of a user with no record of ours (a directory's), kept for
    the token's logins, which ask no directory."""

    token_id: str
    user: str
    created_at: float
    expires_at: float
    grant: str = ""
    address: str = ""
    password_mark: str = attrs.field(default="", repr=False)
    group: str = "default"
    admin: bool = False
    email: str = ""
