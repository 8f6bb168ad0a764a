"""Every Redis key name the daemon uses, in one place.

Nothing outside ``oseod.store`` builds a key. All keys share one prefix so an
operator can tell oseod's data apart in a Redis shared with other software.
"""

from __future__ import annotations

PREFIX = "oseod:"


def user(name: str) -> str:
    """Hash: one user account (password hash, group, admin flag, e-mail...)."""
    return f"{PREFIX}user:{name}"


def users() -> str:
    """Set: the names of all user accounts."""
    return f"{PREFIX}users"


def schema_version() -> str:
    """String: the layout version of the data, for future migrations."""
    return f"{PREFIX}schema"


def nonce(value: str) -> str:
    """String with a TTL: a WS-Security nonce seen within the freshness window."""
    return f"{PREFIX}nonce:{value}"
