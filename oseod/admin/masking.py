"""What operators are shown of the running configuration: every secret
masked, whether a key names it (``password``, ``token``...) or a URL carries
it (``redis://:PW@``, ``unix://PATH?password=PW``)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

MASK = "••••"
# Configuration keys whose values are secrets. Names such as password_file
# (a path) or password_cache_seconds are not.
_SECRET_KEY = re.compile(r"(^|_)(password|passwd|secret|token|apikey|api_key|credentials?|private_key)$", re.I)
# A URL's password: in its user info (redis://:PW@, rediss://USER:PW@,
# redis+sentinel://:PW@H1:P1,H2:P2/M; up to the authority's last "@", so an
# "@" in the password is masked too), or a query parameter (unix://PATH?password=PW).
_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^/?#@:\s]*:)[^/?#\s]*(?P<tail>@)")
_QUERY_SECRET = re.compile(r"(?P<head>[?&;](?:[A-Za-z0-9]+_)?(?:password|passwd|pass|pwd|secret|token|api_?key|auth)=)[^&;#\s]*",
                           re.I)


def masked_config(value: Any, key: str = "") -> Any:
    """``value`` (plain data from the configuration) with its secrets masked."""
    if isinstance(value, Mapping):
        return {str(k): masked_config(v, str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [masked_config(v, key) for v in value]
    if _SECRET_KEY.search(key) and value not in ("", None):
        return MASK
    if isinstance(value, str):
        return masked_url(value)
    return value


def masked_url(text: str) -> str:
    """``text`` with the password of any URL in it masked, in the user info
    or the query: what the admin API and the console show of the running
    configuration (``[server] redis``, ``[ldap] url`` ...)."""
    if "://" not in text and "=" not in text:
        return text
    text = _URL_PASSWORD.sub(lambda m: m.group("head") + MASK + m.group("tail"), text)
    return _QUERY_SECRET.sub(lambda m: m.group("head") + MASK, text)
