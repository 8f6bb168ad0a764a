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

import re
import secrets

DIGITS = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford's base32, lower case
LETTERS = "abcdefghjkmnpqrstvwxyz"  # the first character: never all digits, never a leading 0
LENGTH = 14

# An order id of either form: the counter's (old orders) or a random one.
ORDER_ID = re.compile(r"^(?:[1-9][0-9]{0,18}|[a-hjkmnp-tv-z][0-9a-hjkmnp-tv-z]{%d})$" % (LENGTH - 1))


_REST_BITS = 5 * (LENGTH - 1)


def new_order_id() -> str:
    """A fresh random order id (unique only once the store has taken it).
    One draw of random bits for the 13 characters after the letter: a
    few microseconds, where a choice per character costs Submit 30."""
    bits = secrets.randbits(_REST_BITS)
    rest = "".join([DIGITS[(bits >> shift) & 31] for shift in range(0, _REST_BITS, 5)])
    return LETTERS[secrets.randbelow(len(LETTERS))] + rest
