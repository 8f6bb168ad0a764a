"""The texts of oseod's e-mails: one template per MailEvent, subject and body.

The built-in templates are ``templates/NAME.txt`` beside this module; an
operator replaces any of them with a file of the same name in ``[email]
templates_dir``. A template file is::

    # comment lines at the top (the placeholders it may use)
    Subject: Order ${order_id} was accepted

    The body, with ${placeholders}; $$ is a dollar sign.

Placeholders are ``string.Template``'s (``$name`` or ``${name}``), so
braces, percent signs and the like need no escaping. Each event has a fixed
set of them (PLACEHOLDERS). Mistakes are caught when the templates are
loaded, which the daemon does at start: a placeholder the event does not
have, a stray ``$``, a file with no Subject line or an unknown NAME.txt in
templates_dir raise MailTemplateError naming the file. At render time
nothing can fail: a placeholder the caller gave no value for renders as
the empty string and is logged as a warning (a bug to fix in the caller,
not a reason to hold back the mail).
"""

from __future__ import annotations

import os
import string
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from urllib.parse import quote

import attrs
from twisted.logger import Logger

from ..model.mailevents import MailEvent
from ..model.orders import Order

log = Logger()

# Every template may use these.
COMMON_PLACEHOLDERS = ("service", "order_id", "order_type", "reference", "owner", "status", "status_info")

PLACEHOLDERS: Mapping[MailEvent, frozenset[str]] = {
    event: frozenset(COMMON_PLACEHOLDERS + extra)
    for event, extra in (
        (MailEvent.MODERATION, ("console_url", "item_count")),
        (MailEvent.FAILED_ADMIN, ("console_url", "reason")),
        (MailEvent.ACCEPTED, ()),
        (MailEvent.REJECTED, ("reason",)),
        (MailEvent.BATCH_READY, ("batch", "urls", "expires")),
        (MailEvent.ORDER_READY, ("urls", "expires")),
        (MailEvent.FAILED, ("reason",)),
        (MailEvent.CANCELLED, ("reason",)),
        (MailEvent.SUBSCRIPTION_ENDED, ()),
    )
}

_SUBJECT = "Subject:"


class MailTemplateError(ValueError):
    """A template file is missing, unreadable or wrong; the message names it."""


@attrs.frozen
class MailText:
    """A rendered e-mail: one header line of subject, and the body."""

    subject: str
    body: str


@attrs.frozen
class _Template:
    source: str  # where it was read from, for messages
    subject: string.Template
    body: string.Template


def _parse(event: MailEvent, source: str, text: str) -> _Template:
    lines = text.replace("\r\n", "\n").split("\n")
    while lines and lines[0].startswith("#"):
        lines.pop(0)
    if not lines or not lines[0].startswith(_SUBJECT):
        raise MailTemplateError(f"{source}: the first line after the # comments must be 'Subject: ...'")
    if len(lines) > 1 and lines[1].strip():
        raise MailTemplateError(f"{source}: an empty line must follow the Subject line")
    subject = string.Template(lines[0][len(_SUBJECT):].strip())
    body = string.Template("\n".join(lines[2:]).rstrip() + "\n")
    allowed = PLACEHOLDERS[event]
    for part in (subject, body):
        if not part.is_valid():
            raise MailTemplateError(f"{source}: a $ that starts no placeholder (write $$ for a dollar sign)")
        unknown = sorted(set(part.get_identifiers()) - allowed)
        if unknown:
            raise MailTemplateError(f"{source}: unknown placeholder ${{{unknown[0]}}}; "
                                    f"{event.value} has {', '.join(sorted(allowed))}")
    return _Template(source, subject, body)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as e:
        raise MailTemplateError(f"{path}: cannot read it: {e.strerror}") from None
    except UnicodeDecodeError:
        raise MailTemplateError(f"{path}: not UTF-8 text") from None


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, Sequence) and not isinstance(value, str):
        return "\n".join(str(v) for v in value)  # e.g. urls: one a line
    return str(value)


@attrs.frozen
class MailTemplates:
    """The template of every MailEvent, loaded and checked."""

    _templates: Mapping[MailEvent, _Template]

    @classmethod
    def load(cls, templates_dir: str = "") -> MailTemplates:
        """The built-in templates, each replaced by ``templates_dir/NAME.txt``
        when there is one. MailTemplateError for any mistake (see above)."""
        overrides: dict[str, Path] = {}
        if templates_dir:
            try:
                names = os.listdir(templates_dir)
            except OSError as e:
                raise MailTemplateError(f"email.templates_dir: cannot list {templates_dir}: {e.strerror}") from None
            known = {event.value for event in MailEvent}
            for name in sorted(names):
                stem, dot, suffix = name.rpartition(".")
                if not dot or suffix != "txt":
                    continue  # READMEs, editors' backups...
                if stem not in known:
                    # A misspelt name would otherwise be ignored in silence.
                    raise MailTemplateError(f"{Path(templates_dir) / name}: no e-mail is called {stem!r} "
                                            f"(the names are {', '.join(sorted(known))})")
                overrides[stem] = Path(templates_dir) / name
        built_in = resources.files("oseod.notify").joinpath("templates")
        templates = {}
        for event in MailEvent:
            path = overrides.get(event.value)
            if path is not None:
                templates[event] = _parse(event, str(path), _read(path))
            else:
                source = built_in.joinpath(f"{event.value}.txt")
                templates[event] = _parse(event, f"built-in {event.value}.txt", source.read_text(encoding="utf-8"))
        return cls(templates)

    def source(self, event: MailEvent) -> str:
        """Where ``event``'s template came from (a path, or "built-in ...")."""
        return self._templates[event].source

    def render(self, event: MailEvent, values: Mapping[str, object]) -> MailText:
        """``event``'s subject and body with ``values`` in place. Sequences
        (a list of URLs) become one item a line, None the empty string;
        values the template does not use are ignored."""
        template = self._templates[event]
        wanted = set(template.subject.get_identifiers()) | set(template.body.get_identifiers())
        missing = sorted(wanted - set(values))
        if missing:
            log.warn("e-mail {event} rendered without {missing}", event=event.value, missing=missing)
        texts = {name: _text(values.get(name)) for name in wanted}
        # A header is one line whatever the values hold (a client's order
        # reference with a line break must not start a header of its own).
        subject = " ".join(template.subject.substitute(texts).split())
        return MailText(subject=subject, body=template.body.substitute(texts))


def order_values(order: Order, *, service: str) -> dict[str, str]:
    """The common placeholders' values for ``order`` (COMMON_PLACEHOLDERS);
    ``service`` is how the mails sign, e.g. [service] title."""
    return {
        "service": service,
        "order_id": order.order_id,
        "order_type": order.spec.order_type.value,
        "reference": order.spec.reference or "",
        "owner": order.owner,
        "status": order.status.status.value,
        "status_info": order.status.additional_info or "",
    }


def console_url(base: str, order_id: str) -> str:
    """The operator console's page of ``order_id``: ``base`` is where the
    daemon's HTTP side is reached (its public URL without /oseo)."""
    return f"{base.rstrip('/')}/console/orders/{quote(order_id, safe='')}"
