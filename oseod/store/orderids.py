"""Order ids that nobody can guess or count.

Ids were once 1, 2, 3… (a Redis counter), which told anyone who ordered twice
how many orders the provider had taken in between. A new order's id is
random instead: a lower-case letter and 13 more characters of Crockford's
base32 (no i, l, o or u: nothing to misread when a human copies one), 69
bits. It is safe in a URL and an FTP path, and never all digits, so it can
never be mistaken for an id of the old form, which stay valid.

Uniqueness is not left to chance: the script that creates the order refuses
an id that is already taken and the store draws another (see
``OrderStore.create``). Nothing is reserved or cached per daemon, so any
number of daemons may share one Redis, and a failover cannot make two of them
hand out the same id.
"""

from __future__ import annotations

import os
import re

DIGITS = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford's base32, lower case
LETTERS = "abcdefghjkmnpqrstvwxyz"  # the first character: never all digits, never a leading 0
LENGTH = 14

# An order id of either form: the counter's (old orders) or a random one.
ORDER_ID = re.compile(r"^(?:[1-9][0-9]{0,18}|[a-hjkmnp-tv-z][0-9a-hjkmnp-tv-z]{%d})$" % (LENGTH - 1))


# Each byte stands for the digit of its low five bits: 256 is a multiple
# of 32, so each digit is as likely, and the mapping is done in C (base64's
# b32encode is Python, two microseconds of every Submit).
_DIGIT_OF_BYTE = bytes(DIGITS[byte % len(DIGITS)].encode()[0] for byte in range(256))


# The first character's byte is drawn again when at least this (a multiple
# of len(LETTERS)), so that each letter is as likely.
_FAIR_BELOW = 256 - 256 % len(LETTERS)


class RandomOrderIds:
    """Draws fresh random order ids (unique only once the store has taken
    one), the kernel's random bytes read for many ids at once: under load, a
    system call per Submit was two percent of its time."""

    IDS_PER_READ = 64

    def __init__(self) -> None:
        self._drawn = b""
        self._at = 0

    def __call__(self) -> str:
        at = self._at
        if at + LENGTH > len(self._drawn):
            # (Read when first needed: a daemon that forks after it is built draws in its child only.)
            self._drawn, at = os.urandom(LENGTH * self.IDS_PER_READ), 0
        self._at = at + LENGTH
        return _order_id(self._drawn[at:at + LENGTH])


def _order_id(drawn: bytes) -> str:
    """The id that ``drawn`` (LENGTH random bytes) stands for."""
    first = drawn[0]
    while first >= _FAIR_BELOW:
        first = os.urandom(1)[0]
    return LETTERS[first % len(LETTERS)] + drawn[1:].translate(_DIGIT_OF_BYTE).decode()
