"""User accounts as values: the stored record, the last login, and the
rules a user or group name follows (the store keeps them; the core,
the admin API and the checkers read them)."""

from __future__ import annotations

import re

import attrs

# Conservative on purpose: a user name travels in FTP commands, URLs, LDAP
# filters and log lines, and must mean the same thing in all of them.
USER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
GROUP_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class UserExists(Exception):
    pass


class NoSuchUser(Exception):
    pass


def check_user_name(name: str) -> str:
    if not USER_NAME.match(name):
        raise ValueError(
            f"invalid user name {name!r}: 1-64 letters, digits, '.', '_', '@' or '-', starting with a letter or digit"
        )
    return name


def check_group_name(group: str) -> str:
    if not GROUP_NAME.match(group):
        raise ValueError(f"invalid group {group!r}: 1-64 letters, digits, '.', '_' or '-'")
    return group


@attrs.frozen
class UserRecord:
    """A stored account. ``password_hash`` is the encoded scrypt hash, never a
    password; ``digest_secret`` (empty when none) is the password sealed by
    :class:`oseod.auth.secrets.SecretBox` for PasswordDigest logins."""

    name: str
    password_hash: str = attrs.field(repr=False)
    group: str = "default"
    admin: bool = False
    email: str = ""
    created_at: float = 0.0
    digest_secret: str = attrs.field(default="", repr=False)
    # Refused at every login (every checker that reads Redis accounts) until enabled again.
    disabled: bool = False

    def to_fields(self) -> list[str]:
        fields = [
            "password", self.password_hash,
            "group", self.group,
            "admin", "1" if self.admin else "0",
            "email", self.email,
            "created_at", repr(self.created_at),
        ]  # fmt: skip
        if self.digest_secret:
            fields += ["digest_secret", self.digest_secret]
        if self.disabled:
            fields += ["disabled", "1"]
        return fields

    @classmethod
    def from_fields(cls, name: str, fields: dict[str, str]) -> UserRecord:
        return cls(
            name=name,
            password_hash=fields.get("password", ""),
            group=fields.get("group", "default"),
            admin=fields.get("admin") == "1",
            email=fields.get("email", ""),
            created_at=float(fields.get("created_at", "0") or 0),
            digest_secret=fields.get("digest_secret", ""),
            disabled=fields.get("disabled") == "1",
        )


@attrs.frozen
class Login:
    source: str
    at: float
    group: str = ""
    admin: bool = False
    email: str = ""


@attrs.frozen
class FileAccount:
    """An account of the password file (``[auth] password_file``): read-only
    to oseod, shown to operators beside the Redis accounts."""

    name: str
    hash: str
    group: str = "default"
