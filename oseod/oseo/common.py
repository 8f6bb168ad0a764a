"""What the OSEO operation modules share: the request base (service and
version), a reader for the XSD's closed sequences, simple-value checks that
name the offending value, dates, the response base, and the client XML
fragments kept verbatim for echoing.

Every check here raises a sender-side ``OseoError`` whose locator is the
local name of the element at fault, so a parser only says what it expects.
"""

from __future__ import annotations

import copy
import functools
import re
import threading
from collections.abc import Collection, Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Final

from lxml import etree

from oseod.model.orders import Fragment
from oseod.oseo.errors import ExceptionCode, OseoError, quote
from oseod.oseo.namespaces import OSEO, SOAP11, SOAP12, WSA, WSSE, WSU, qname
from oseod.oseo.xmlparse import parse_xml

VERSION: Final = "1.0.0"
SERVICE: Final = "OS"

# Enumerations of oseo.xsd, for the parsers and for whoever configures what
# GetOptions advertises.
ORDER_TYPES: Final = ("PRODUCT_ORDER", "SUBSCRIPTION_ORDER", "TASKING_ORDER")
PROTOCOLS: Final = ("ftp", "ftps", "sftp", "P2P", "wcs", "wms", "e-mail", "dds", "http", "https")
PACKAGE_MEDIA: Final = ("NTP", "DAT", "Exabyte", "CD-ROM", "DLT", "D1", "DVD", "BD", "LTO", "LTO2", "LTO4")
PACKAGING: Final = ("zip", "tar", "tgz", "compress", "bzip", "bzip2", "gzip", "rar", "7z")
SHIPPING_INSTRUCTIONS: Final = ("as each product is ready", "once all products are ready", "other")
ENCODINGS: Final = ("XMLEncoding", "TextEncoding")

_XSI_NIL: Final = "{http://www.w3.org/2001/XMLSchema-instance}nil"


@functools.cache
def oseo(local: str) -> str:
    """The Clark name of an element of the OSEO namespace."""
    return qname(OSEO, local)


_OSEO_PREFIX: Final = "{" + OSEO + "}"


def local_name(element: etree._Element) -> str:
    tag = element.tag
    return tag.rpartition("}")[2] if isinstance(tag, str) else str(tag)


# ---------------------------------------------------------------- request base


def check_request(element: etree._Element, operation: str) -> None:
    """The element is ``oseo:<operation>`` with service="OS" and version="1.0.0"
    (OrderRequestBaseType)."""
    if element.tag != oseo(operation):
        raise OseoError(
            ExceptionCode.OperationNotSupported,
            local_name(element) if isinstance(element.tag, str) else None,
            f"expected oseo:{operation}, not {quote(str(element.tag))}",
        )
    service = element.get("service")
    if service is None or not service.strip():
        raise OseoError.missing("service", 'missing service: it must be "OS"')
    if service.strip() != SERVICE:
        raise OseoError.invalid("service", f'invalid service {quote(service)}: it must be "OS"')
    version = element.get("version")
    if version is None or not version.strip():
        raise OseoError.missing("version", f'missing version: it must be "{VERSION}"')
    if version.strip() != VERSION:
        raise OseoError.invalid("version", f'invalid version {quote(version)}: this server implements "{VERSION}"')


# ------------------------------------------------------------ closed sequences


def content(*names: str) -> Mapping[str, int]:
    """A content model for ``Children``: the local names of an XSD sequence,
    in schema order."""
    return {name: position for position, name in enumerate(names)}


class Children:
    """A cursor over the element children of ``parent``, read in the order of
    an XSD sequence.

    ``known`` (built by ``content``) lists, in schema order, the local names
    (in the OSEO namespace) the content model allows. An element that is not
    among them is unexpected (InvalidParameterValue naming it), and so is a
    known one met after its place (repeated, or out of order). A mandatory
    element that is absent, when the next element belongs further down the
    sequence or there is none, is missing (MissingParameterValue naming it).
    """

    __slots__ = ("_parent", "_known", "_items", "_names", "_index")

    def __init__(self, parent: etree._Element, known: Mapping[str, int]) -> None:
        self._parent = parent
        self._known = known
        items = []
        names: list[str | None] = []
        skip = len(_OSEO_PREFIX)
        # Element-only content: text between the elements is not ignored but
        # refused (a kept fragment holding it would be echoed as invalid XML).
        text = parent.text
        if text and not text.isspace():
            _no_text(parent, text)
        for child in parent:
            tag = child.tag
            if tag.__class__ is str:  # not a comment or processing instruction
                items.append(child)
                names.append(tag[skip:] if tag.startswith(_OSEO_PREFIX) else None)
            text = child.tail
            if text and not text.isspace():
                _no_text(parent, text)
        self._items = items
        self._names = names
        self._index = 0

    def _position(self) -> int | None:
        """Where the next element belongs in the sequence; None if nowhere."""
        name = self._names[self._index]
        return None if name is None else self._known.get(name)

    def _unexpected(self) -> OseoError:
        element = self._items[self._index]
        local = local_name(element)
        where = local_name(self._parent)
        if self._position() is not None:
            return OseoError.invalid(local, f"element {local} is repeated or out of place in {where}")
        return OseoError.invalid(local, f"unexpected element {quote(str(element.tag))} in {where}")

    @property
    def next_name(self) -> str | None:
        """The local name of the next OSEO element; None at the end or
        before an element of another namespace."""
        return self._names[self._index] if self._index < len(self._names) else None

    def optional(self, local: str) -> etree._Element | None:
        index = self._index
        if index < len(self._items) and self._names[index] == local:
            self._index = index + 1
            return self._items[index]
        return None

    def required(self, local: str) -> etree._Element:
        element = self.optional(local)
        if element is None:
            raise self._missing((local,))
        return element

    def repeated(self, local: str) -> list[etree._Element]:
        start = index = self._index
        names = self._names
        while index < len(names) and names[index] == local:
            index += 1
        self._index = index
        return self._items[start:index]

    def choice(self, *locals_: str) -> etree._Element:
        """One of ``locals_`` (a mandatory xs:choice of single elements)."""
        index = self._index
        if index < len(self._items) and self._names[index] in locals_:
            self._index = index + 1
            return self._items[index]
        raise self._missing(locals_)

    def _missing(self, locals_: tuple[str, ...]) -> OseoError:
        if self._index < len(self._items):
            position = self._position()
            if position is None or position < min(self._known.get(local, 0) for local in locals_):
                return self._unexpected()
        where = local_name(self._parent)
        wanted = " or ".join(locals_)
        return OseoError.missing(locals_[0], f"missing {wanted} in {where}")

    def finish(self) -> None:
        """No element may be left over."""
        if self._index < len(self._items):
            raise self._unexpected()


def _no_text(parent: etree._Element, text: str | None) -> None:
    if text and not text.isspace():
        local = local_name(parent)
        raise OseoError.invalid(local, f"{local} holds elements only, not the text {quote(text.strip(), 40)}")


# --------------------------------------------------------------- simple values


def simple_text(element: etree._Element) -> str:
    """The text of a simple-typed element, blanks around it removed."""
    if len(element):
        for child in element:
            if isinstance(child.tag, str):
                local = local_name(element)
                raise OseoError.invalid(local, f"{local} must hold text only, not the element {quote(str(child.tag))}")
    text = element.text
    return text.strip() if text else ""


def string(element: etree._Element, max_length: int | None = None, *, required: bool = False,
           min_length: int = 0) -> str:
    """A string value within the XSD's length facets.

    An empty value of a mandatory element (``required``) is a missing
    value; one of an optional element with a minimum length is invalid.
    Values are never truncated.
    """
    value = simple_text(element)
    if not value and (required or min_length):
        local = local_name(element)
        if required:
            raise OseoError.missing(local, f"{local} is empty")
        raise OseoError.invalid(local, f"{local} must not be empty")
    if max_length is not None and len(value) > max_length:
        local = local_name(element)
        raise OseoError.invalid(
            local, f"{local} {quote(value, 40)} is {len(value)} characters long; at most {max_length} are allowed"
        )
    return value


def token(element: etree._Element, allowed: Collection[str]) -> str:
    """A value of an XSD enumeration (mandatory: empty is missing)."""
    value = simple_text(element)
    if value in allowed:
        return value
    local = local_name(element)
    if not value:
        raise OseoError.missing(local, f"{local} is empty; expected one of {', '.join(allowed)}")
    raise OseoError.invalid(local, f"invalid {local} {quote(value)}; expected one of {', '.join(allowed)}")


def is_nil(element: etree._Element) -> bool:
    return element.get(_XSI_NIL, "").strip() in ("true", "1")


def integer(element: etree._Element) -> int:
    """An xs:int."""
    value = simple_text(element)
    local = local_name(element)
    if not value:
        raise OseoError.missing(local, f"{local} is empty")
    match = re.fullmatch(r"([+-]?)0*([0-9]{1,10})", value)  # xs:int allows any leading zeros
    number = int(match.group(1) + match.group(2)) if match else None
    if number is None or not -(2**31) <= number < 2**31:
        raise OseoError.invalid(local, f"invalid {local} {quote(value)}: expected an integer")
    return number


_TASKING_REQUEST_ID: Final = content("ID")


def tasking_request_id_of(element: etree._Element) -> str:
    """The ID of a ``taskingRequestId`` (TaskingRequestIdType: GetOptions,
    order items)."""
    children = Children(element, _TASKING_REQUEST_ID)
    value = string(children.required("ID"), required=True)
    children.finish()
    return value


# ----------------------------------------------------------------------- dates

_DATE_TIME = re.compile(
    r"(?P<year>\d{4})-(?P<month>\d\d)-(?P<day>\d\d)"
    r"(?:T(?P<hour>\d\d):(?P<minute>\d\d):(?P<second>\d\d)(?:\.(?P<fraction>\d+))?)?"
    r"(?P<zone>Z|[+-]\d\d:\d\d)?",
    re.ASCII,  # xs:dateTime digits are 0-9, not any script's
)


def parse_date_time(value: str, *, end_of_day: bool = False) -> datetime | None:
    """An xs:dateTime, or an xs:date (its first instant, or with
    ``end_of_day`` its last), as an aware UTC datetime; None when ``value``
    is neither. A value without a zone is UTC."""
    match = _DATE_TIME.fullmatch(value)
    if match is None:
        return None
    zone = match["zone"]
    tz = UTC
    if zone and zone != "Z":
        hours, minutes = int(zone[1:3]), int(zone[4:6])
        if hours > 14 or minutes > 59 or (hours == 14 and minutes):
            return None
        offset = timedelta(hours=hours, minutes=minutes)
        tz = timezone(-offset if zone[0] == "-" else offset)
    try:
        if match["hour"] is None:
            result = datetime(int(match["year"]), int(match["month"]), int(match["day"]), tzinfo=tz)
            if end_of_day:
                result += timedelta(days=1, microseconds=-1)
            return result.astimezone(UTC)
        hour, minute, second = int(match["hour"]), int(match["minute"]), int(match["second"])
        fraction = match["fraction"] or ""
        extra = timedelta()
        if hour == 24:  # 24:00:00 is the end of the day, i.e. the next midnight
            if minute or second or fraction.strip("0"):
                return None
            hour, extra = 0, timedelta(days=1)
        micro = int((fraction + "000000")[:6])
        result = datetime(int(match["year"]), int(match["month"]), int(match["day"]), hour, minute, second, micro,
                          tzinfo=tz)
        return (result + extra).astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def date_time(element: etree._Element, *, allow_date: bool = False, end_of_day: bool = False) -> datetime:
    """The value of a dateTime element as an aware UTC datetime."""
    value = simple_text(element)
    local = local_name(element)
    if not value:
        raise OseoError.missing(local, f"{local} is empty")
    parsed = parse_date_time(value, end_of_day=end_of_day)
    if parsed is None or (not allow_date and "T" not in value):
        expected = "a date (YYYY-MM-DD) or an xs:dateTime" if allow_date else "an xs:dateTime (YYYY-MM-DDThh:mm:ssZ)"
        raise OseoError.invalid(local, f"invalid {local} {quote(value)}: expected {expected}")
    return parsed


def format_date_time(moment: datetime | float) -> str:
    """An xs:dateTime in UTC with millisecond precision and a Z."""
    if not isinstance(moment, datetime):
        moment = datetime.fromtimestamp(moment, UTC)
    elif moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


# ------------------------------------------------------------------- responses

RESPONSE_NSMAP: Final = {"oseo": OSEO}


def response(local: str, nsmap: dict[str | None, str] | None = None) -> etree._Element:
    """A new ``oseo:<local>`` response with ``status`` success
    (OrderResponseBaseType)."""
    root = etree.Element(oseo(local), nsmap=nsmap or RESPONSE_NSMAP)
    etree.SubElement(root, oseo("status")).text = "success"
    return root


def sub(parent: etree._Element, local: str, text: str | None = None) -> etree._Element:
    """A new ``oseo:<local>`` child of ``parent``."""
    element = etree.SubElement(parent, oseo(local))
    if text is not None:
        element.text = text
    return element


# ------------------------------------------------------------------- fragments

# Namespaces of the SOAP envelope and its headers: an OSEO payload never
# refers to them, so a fragment does not need to carry their declarations.
_ENVELOPE_NAMESPACES: Final = frozenset({SOAP11, SOAP12, WSSE, WSU, WSA})


_VALUES: Final = qname(OSEO, "values")
# The attributes any element may carry: schema location hints.
_HINTS: Final = frozenset(qname("http://www.w3.org/2001/XMLSchema-instance", local)
                          for local in ("schemaLocation", "noNamespaceSchemaLocation"))


def _check_attributes(element: etree._Element) -> None:
    """The OSEO elements of a fragment declare no attributes (but ``values``,
    of xs:anyType, whose content is the client's own): one would be kept and
    echoed into a schema-invalid answer."""
    pending = [element]
    while pending:
        node = pending.pop()
        if node.tag == _VALUES:
            continue
        for name in node.attrib:
            if name not in _HINTS:
                local = local_name(node)
                raise OseoError.invalid(local, f"unexpected attribute {quote(name)} on {local}")
        pending.extend(child for child in node if isinstance(child.tag, str) and child.tag.startswith(_OSEO_PREFIX))


# Something that may be a prefix in use: of a name, or of a QName in text or
# an attribute value ("x:T" in xsi:type="x:T"). Only at the start of a word:
# trying every position of a long word would take quadratic time.
_PREFIX: Final = re.compile(r"(?<![\w.-])([^\W\d][\w.-]*):")


def fragment(element: etree._Element) -> Fragment:
    """An OSEO element of a request kept verbatim (see :func:`verbatim`). An
    attribute on one of its OSEO elements is InvalidParameterValue."""
    _check_attributes(element)
    return verbatim(element)


def verbatim(element: etree._Element) -> Fragment:
    """``element`` kept verbatim, with the namespace declarations it needs so
    it stands on its own: those its names use, the default one, and those
    whose prefix its text or attribute values may mention (xsi:type="x:T"),
    less the envelope's own.

    Declarations it does not refer to are left out: a request that declares
    many namespaces must not repeat them all in each fragment it holds."""
    name = local_name(element)
    in_scope = element.nsmap
    if len(in_scope) == 1:  # its own namespace (OSEO), which it needs
        return Fragment(name, etree.tostring(element, encoding="unicode", with_tail=False))
    # A copy (of the whole subtree) declares only the namespaces its names use.
    twin = copy.copy(element)
    xml = etree.tostring(twin, encoding="unicode", with_tail=False)
    mentioned = set(_PREFIX.findall(xml))
    keep = {prefix: uri for prefix, uri in in_scope.items()
            if (prefix is None or prefix in mentioned) and uri not in _ENVELOPE_NAMESPACES}
    if any(twin.nsmap.get(prefix) != uri for prefix, uri in keep.items()):
        rebuilt = etree.Element(twin.tag, nsmap={**keep, **twin.nsmap})
        for key, value in twin.attrib.items():
            rebuilt.set(key, value)
        rebuilt.text = twin.text
        rebuilt.extend(list(twin))
        xml = etree.tostring(rebuilt, encoding="unicode", with_tail=False)
    return Fragment(name, xml)


class _FragmentCache(threading.local):
    """Parsed fragments, per thread (lxml trees are not shared between
    threads). GetStatus polls render the same fragments again and again;
    copying a parsed element costs a fifth of parsing it."""

    LIMIT = 1024
    LARGEST = 8192  # characters; longer fragments are parsed each time

    def __init__(self) -> None:
        self.elements: dict[str, etree._Element] = {}

    def get(self, xml: str) -> etree._Element:
        element = self.elements.get(xml)
        if element is None:
            element = parse_xml(xml.encode("utf-8"))
            if len(xml) > self.LARGEST:
                return element
            if len(self.elements) >= self.LIMIT:
                self.elements.clear()
            self.elements[xml] = element
        return copy.copy(element)  # lxml copies the whole subtree


_fragments = _FragmentCache()


def append_fragments(parent: etree._Element, fragments: tuple[Fragment, ...], name: str) -> bool:
    """Append every fragment called ``name`` to ``parent``; whether there was one."""
    found = False
    for item in fragments:
        if item.name == name:
            parent.append(_fragments.get(item.xml))
            found = True
    return found


def request_children(payload: etree._Element, operation: str, known: Mapping[str, int]) -> Children:
    """The children of an OSEO request after its common part: checks
    service and version, and a leading timeStamp (validated, then unused)."""
    check_request(payload, operation)
    children = Children(payload, known)
    if (stamp := children.optional("timeStamp")) is not None:
        date_time(stamp)
    return children
