"""Who receives which e-mail: a pure decision over the configuration."""

from __future__ import annotations

from collections.abc import Iterable

from ..config import Config
from ..model.accounts import Account
from ..model.addresses import is_mail_address, mail_address
from ..model.mailevents import MailEvent


def mail_enabled(event: MailEvent, config: Config, collection_ids: Iterable[str]) -> bool:
    """Whether ``event`` is mailed for an order on ``collection_ids``: when
    e-mail is configured at all, and one of the order's collections lists
    the event in its email_events. Collections no longer configured count
    as the default (every event), so an order of a collection removed
    since still gets its mails."""
    if not config.email.smtp_host:
        return False
    ids = list(collection_ids)
    if not ids:
        return True
    for collection_id in ids:
        collection = config.collection(collection_id)
        if collection is None or event.value in collection.email_events:
            return True
    return False


def mail_recipients(event: MailEvent, owner: Account | None, config: Config,
                    collection_ids: Iterable[str] = ()) -> list[str]:
    """The addresses ``event`` goes to, for an order of ``owner`` on
    ``collection_ids``; [] when nobody should get it. Administrators' mails
    go to [email] admins; the others to the owner's address, when their
    account has one that is a plain address (others are skipped, never
    passed to the SMTP server). No address twice."""
    if not mail_enabled(event, config, collection_ids):
        return []
    if event.to_admins:
        candidates = [mail_address(address) for address in config.email.admins]
    else:
        candidates = [owner.email.strip()] if owner is not None and is_mail_address(owner.email) else []
    return list(dict.fromkeys(candidates))
