"""E-mail addresses as oseod accepts them: one plain ``local@domain``, with an
optional display name (``Name <local@domain>``) where a header shows it.

Stricter than RFC 5322 on purpose: these strings end up in SMTP commands
and headers, so anything that could split a line, smuggle a second address
or need quoting is refused rather than escaped. A leaf module: the
configuration checks its addresses here.
"""

from __future__ import annotations

import re

# No spaces, controls, quotes, brackets, separators or a second @ on either side.
_ATOM = r"[^\s\x00-\x1f\x7f@<>()\[\],;:\"\\]+"
_ADDRESS = re.compile(rf"^{_ATOM}@{_ATOM}$")
_NAMED = re.compile(rf"^(?P<name>[^<>\x00-\x1f\x7f\"]*)<(?P<address>{_ATOM}@{_ATOM})>$")


def mail_address(text: str, *, display_name: bool = False) -> str:
    """The bare address in ``text``; ValueError saying what is wrong
    otherwise. ``display_name``: ``Name <local@domain>`` is accepted too."""
    text = text.strip()
    if _ADDRESS.match(text):
        return text
    named = _NAMED.match(text) if display_name else None
    if named is not None:
        return named.group("address")
    form = "local@domain or Name <local@domain>" if display_name else "local@domain"
    raise ValueError(f"must be one e-mail address, {form} (got {text!r})")


def is_mail_address(text: str) -> bool:
    try:
        mail_address(text)
    except ValueError:
        return False
    return True


def smtp_address(address: str) -> str:
    """``address`` as the SMTP envelope carries it without SMTPUTF8: the
    domain in IDNA (xn--) form. ValueError for a local part that is not
    ASCII, which no plain SMTP server can take."""
    local, _, domain = mail_address(address).rpartition("@")
    if not local.isascii():
        raise ValueError(f"{address!r}: the part before @ is not ASCII")
    if not domain.isascii():
        try:
            domain = domain.encode("idna").decode("ascii")
        except UnicodeError:
            raise ValueError(f"{address!r}: the domain is not a valid international name") from None
    return f"{local}@{domain}"
