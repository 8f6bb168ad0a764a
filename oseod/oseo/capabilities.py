"""GetCapabilities: the request (XML and KVP), version negotiation, and the
``oseo:Capabilities`` document.

The element order below follows the XSDs exactly, and XML Schema sequences
are order-sensitive: oseo.xsd (Capabilities, OrderingServiceContentsType,
CollectionCapability) and OWS 2.0 owsGetCapabilities, owsServiceIdentification
(with DescriptionType from owsDataIdentification), owsServiceProvider (with
ows19115subset) and owsOperationsMetadata.
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs
from lxml import etree

from oseod.oseo.errors import ExceptionCode, OseoError, quote
from oseod.oseo.kvp import fold_keys, split_list
from oseod.oseo.namespaces import OSEO, OWS, XLINK, qname
from oseod.oseo.wsn import render_notifications

VERSION = "1.0.0"
SERVICE = "OS"

# The sections of an OSEO Capabilities document (OWS 2.0 CapabilitiesBaseType
# plus oseo.xsd's Contents and Notifications), and the OWS "All". oseod renders
# no Languages (and Notifications only for a WS-Notification producer), but
# asking for them is not an error.
SECTIONS = frozenset(
    {"ServiceIdentification", "ServiceProvider", "OperationsMetadata", "Languages", "Contents", "Notifications", "All"}
)


# --------------------------------------------------------------------- values


@attrs.frozen
class ServiceIdentification:
    title: str
    abstract: str
    keywords: tuple[str, ...]
    fees: str
    access_constraints: tuple[str, ...]


@attrs.frozen
class ServiceProvider:
    """Who runs the service. An empty string leaves its element out."""

    name: str
    site: str
    individual_name: str
    position_name: str
    phone: str
    email: str
    delivery_point: str
    city: str
    administrative_area: str
    postal_code: str
    country: str


@attrs.frozen
class CollectionCapability:
    """What one collection allows, rendered as an oseo:SupportedCollection.

    ``programming_orders`` has no element in oseo.xsd's CollectionCapability,
    so it is not rendered; the core uses it to refuse tasking orders.
    """

    collection_id: str
    product_orders: bool
    subscription_orders: bool
    programming_orders: bool
    cancel: bool = True
    describe_result_access: bool = True


@attrs.frozen
class QuotationCapabilities:
    supported: bool
    synchronous: bool
    asynchronous: bool
    monitoring: bool
    off_line: bool


def _at_least_two(instance: object, attribute: attrs.Attribute[tuple[str, ...]], value: tuple[str, ...]) -> None:
    # ows:OperationsMetadata requires two ows:Operation at least; a server
    # always has GetCapabilities and GetStatus (both Core), so fewer is a bug.
    if len(value) < 2:
        raise ValueError(f"{attribute.name} must name at least two operations (got {value!r})")


@attrs.frozen
class ServiceCapabilities:
    """Everything a Capabilities document says.

    The global DescribeResultAccessCapabilities and CancelCapabilities are
    "supported" when ``operations`` lists DescribeResultAccess and Cancel.
    """

    identification: ServiceIdentification
    provider: ServiceProvider
    endpoint_url: str
    operations: tuple[str, ...] = attrs.field(validator=_at_least_two)
    collections: tuple[CollectionCapability, ...]
    product_orders: bool
    subscription_orders: bool
    programming_orders: bool
    quotation: QuotationCapabilities
    submit_asynchronous: bool
    max_products: int
    cancel_asynchronous: bool
    update_sequence: str | None = None
    # Where clients send wsnt:Subscribe, when oseod is a WS-Notification
    # producer; None renders no Notifications section.
    notification_producer: str | None = None


@attrs.frozen
class GetCapabilitiesRequest:
    """``accept_versions`` is empty when the client named none (any version
    will do); ``sections`` is None when the client asked for no selection."""

    accept_versions: tuple[str, ...] = ()
    sections: frozenset[str] | None = None
    update_sequence: str | None = None


# -------------------------------------------------------------------- parsing

_GET_CAPABILITIES = qname(OSEO, "GetCapabilities")
_ACCEPT_VERSIONS = qname(OWS, "AcceptVersions")
_VERSION = qname(OWS, "Version")
_SECTIONS = qname(OWS, "Sections")
_SECTION = qname(OWS, "Section")
# Optional in OWS; oseod answers in XML and English whatever they say.
_IGNORED = frozenset({qname(OWS, "AcceptFormats"), qname(OWS, "AcceptLanguages")})


def _check_service(value: str | None) -> None:
    if value is None or value == "":
        raise OseoError.missing("service", 'missing service: it must be "OS"')
    if value != SERVICE:
        raise OseoError.invalid("service", f'invalid service {quote(value)}: it must be "OS"')


def _texts(parent: etree._Element, tag: str) -> tuple[str, ...]:
    values = []
    for child in parent:
        if not isinstance(child.tag, str):
            continue
        if child.tag != tag:
            local = str(etree.QName(child).localname)
            where = etree.QName(parent).localname
            raise OseoError.invalid(local, f"unexpected element {quote(child.tag)} in {where}")
        values.append((child.text or "").strip())
    return tuple(values)


def parse_get_capabilities(element: etree._Element) -> GetCapabilitiesRequest:
    """The request carried by an ``oseo:GetCapabilities`` element."""
    if element.tag != _GET_CAPABILITIES:
        raise OseoError(
            ExceptionCode.OperationNotSupported,
            str(etree.QName(element).localname),
            f"expected oseo:GetCapabilities, not {quote(str(element.tag))}",
        )
    _check_service(element.get("service"))
    versions: tuple[str, ...] | None = None
    sections: frozenset[str] | None = None
    for child in element:
        if not isinstance(child.tag, str) or child.tag in _IGNORED:
            continue
        if child.tag == _ACCEPT_VERSIONS and versions is None:
            versions = _texts(child, _VERSION)
            if not versions:
                raise OseoError.missing("AcceptVersions", "AcceptVersions must list at least one Version")
        elif child.tag == _SECTIONS and sections is None:
            sections = frozenset(_texts(child, _SECTION))
        else:
            local = str(etree.QName(child).localname)
            raise OseoError.invalid(local, f"unexpected element {quote(child.tag)} in GetCapabilities")
    return GetCapabilitiesRequest(
        accept_versions=versions or (),
        sections=sections,
        update_sequence=element.get("updateSequence") or None,
    )


def parse_get_capabilities_kvp(params: Mapping[str, str]) -> GetCapabilitiesRequest:
    """The request carried by ``GET ?service=OS&request=GetCapabilities&…``.

    ``params`` holds one value per name, as decoded from the query string.
    """
    folded = fold_keys(params)
    _check_service(folded.get("service"))
    request = folded.get("request")
    if not request:
        raise OseoError.missing("request", "missing request: it must be GetCapabilities")
    if request != "GetCapabilities":
        raise OseoError(
            ExceptionCode.OperationNotSupported,
            request,
            f"operation {quote(request)} is not available through KVP; only GetCapabilities is",
        )
    versions: tuple[str, ...] = ()
    if "acceptversions" in folded:
        versions = split_list(folded["acceptversions"])
        if not versions:
            raise OseoError.missing("AcceptVersions", "AcceptVersions must list at least one version")
    sections = None
    if "sections" in folded:
        sections = frozenset(split_list(folded["sections"]))
    return GetCapabilitiesRequest(versions, sections, folded.get("updatesequence") or None)


def negotiate(request: GetCapabilitiesRequest) -> None:
    """Refuse a request this server cannot answer: none of the accepted
    versions is 1.0.0, or an unknown section is named."""
    if request.accept_versions and VERSION not in request.accept_versions:
        named = ", ".join(quote(version) for version in request.accept_versions[:5])
        raise OseoError(
            ExceptionCode.VersionNegotiationFailed,
            "AcceptVersions",
            f"none of the accepted versions ({named}) is supported: this server implements {VERSION}",
        )
    if request.sections is not None:
        unknown = sorted(request.sections - SECTIONS)
        if unknown:
            raise OseoError.invalid(
                "Sections",
                f"unknown section {quote(unknown[0])}; known sections: {', '.join(sorted(SECTIONS))}",
            )


def select_sections(request: GetCapabilitiesRequest, caps: ServiceCapabilities) -> frozenset[str] | None:
    """The ``sections`` argument for ``render_capabilities``.

    A client that already holds the current document (its updateSequence
    equals ours) gets only the version and updateSequence attributes, as
    oseo.xsd asks; otherwise it gets the sections it named.
    """
    if caps.update_sequence is not None and request.update_sequence == caps.update_sequence:
        return frozenset()
    return request.sections


# ------------------------------------------------------------------ rendering


def _ows(local: str) -> str:
    return qname(OWS, local)


def _oseo(local: str) -> str:
    return qname(OSEO, local)


_HREF = qname(XLINK, "href")
_ROOT_NSMAP = {"oseo": OSEO, "ows": OWS, "xlink": XLINK}


def _sub(parent: etree._Element, tag: str, text: str | None = None) -> etree._Element:
    element = etree.SubElement(parent, tag)
    if text is not None:
        element.text = text
    return element


def _flags(parent: etree._Element, tag: str, **flags: bool) -> None:
    element = etree.SubElement(parent, tag)
    for name, value in flags.items():
        element.set(name, "true" if value else "false")


def _service_identification(parent: etree._Element, ident: ServiceIdentification) -> None:
    section = _sub(parent, _ows("ServiceIdentification"))
    # DescriptionType first (Title*, Abstract*, Keywords*), then the service's own.
    if ident.title:
        _sub(section, _ows("Title"), ident.title)
    if ident.abstract:
        _sub(section, _ows("Abstract"), ident.abstract)
    if ident.keywords:
        keywords = _sub(section, _ows("Keywords"))
        for keyword in ident.keywords:
            _sub(keywords, _ows("Keyword"), keyword)
    _sub(section, _ows("ServiceType"), SERVICE)
    _sub(section, _ows("ServiceTypeVersion"), VERSION)
    if ident.fees:
        _sub(section, _ows("Fees"), ident.fees)
    for constraint in ident.access_constraints:
        _sub(section, _ows("AccessConstraints"), constraint)


def _service_provider(parent: etree._Element, provider: ServiceProvider) -> None:
    section = _sub(parent, _ows("ServiceProvider"))
    _sub(section, _ows("ProviderName"), provider.name)  # required, even if empty
    if provider.site:
        _sub(section, _ows("ProviderSite")).set(_HREF, provider.site)
    contact = _sub(section, _ows("ServiceContact"))  # required; its children are not
    if provider.individual_name:
        _sub(contact, _ows("IndividualName"), provider.individual_name)
    if provider.position_name:
        _sub(contact, _ows("PositionName"), provider.position_name)
    address_fields = (
        ("DeliveryPoint", provider.delivery_point),
        ("City", provider.city),
        ("AdministrativeArea", provider.administrative_area),
        ("PostalCode", provider.postal_code),
        ("Country", provider.country),
        # The e-mail address lives inside ows:Address in ISO 19115.
        ("ElectronicMailAddress", provider.email),
    )
    if not provider.phone and not any(value for _, value in address_fields):
        return
    info = _sub(contact, _ows("ContactInfo"))
    if provider.phone:
        _sub(_sub(info, _ows("Phone")), _ows("Voice"), provider.phone)
    if any(value for _, value in address_fields):
        address = _sub(info, _ows("Address"))
        for local, value in address_fields:
            if value:
                _sub(address, _ows(local), value)


def _kvp_prefix(url: str) -> str:
    # OWS KVP: the Get href is a prefix to which "key=value&..." is appended.
    if "?" not in url:
        return url + "?"
    return url if url.endswith(("?", "&")) else url + "&"


def _operations_metadata(parent: etree._Element, caps: ServiceCapabilities) -> None:
    section = _sub(parent, _ows("OperationsMetadata"))
    for name in caps.operations:
        operation = _sub(section, _ows("Operation"))
        operation.set("name", name)
        http = _sub(_sub(operation, _ows("DCP")), _ows("HTTP"))
        if name == "GetCapabilities":
            _sub(http, _ows("Get")).set(_HREF, _kvp_prefix(caps.endpoint_url))
        post = _sub(http, _ows("Post"))
        post.set(_HREF, caps.endpoint_url)
        # OWS Common's PostEncoding constraint: POST takes a SOAP envelope
        # or the bare XML document.
        constraint = _sub(post, _ows("Constraint"))
        constraint.set("name", "PostEncoding")
        allowed = _sub(constraint, _ows("AllowedValues"))
        _sub(allowed, _ows("Value"), "SOAP")
        _sub(allowed, _ows("Value"), "XML")


def _supported_collection(parent: etree._Element, collection: CollectionCapability, cancel_async: bool) -> None:
    element = _sub(parent, _oseo("SupportedCollection"))
    _sub(element, _oseo("collectionId"), collection.collection_id)
    # Every override is written out, so a client need not merge with the
    # global flags to know what a collection allows.
    _flags(element, _oseo("ProductOrders"), supported=collection.product_orders)
    _flags(element, _oseo("SubscriptionOrders"), supported=collection.subscription_orders)
    _flags(element, _oseo("DescribeResultAccessCapabilities"), supported=collection.describe_result_access)
    _flags(
        element,
        _oseo("CancelCapabilities"),
        supported=collection.cancel,
        asynchronous=collection.cancel and cancel_async,
    )


def _contents(parent: etree._Element, caps: ServiceCapabilities) -> None:
    contents = _sub(parent, _oseo("Contents"))
    _flags(contents, _oseo("ProductOrders"), supported=caps.product_orders)
    _flags(contents, _oseo("SubscriptionOrders"), supported=caps.subscription_orders)
    _flags(contents, _oseo("ProgrammingOrders"), supported=caps.programming_orders)
    quotation = caps.quotation
    _flags(
        contents,
        _oseo("GetQuotationCapabilities"),
        supported=quotation.supported,
        synchronous=quotation.synchronous,
        asynchronous=quotation.asynchronous,
        monitoring=quotation.monitoring,
        **{"off-line": quotation.off_line},
    )
    submit = _sub(contents, _oseo("SubmitCapabilities"))
    submit.set("asynchronous", "true" if caps.submit_asynchronous else "false")
    submit.set("maxNumberOfProducts", str(caps.max_products))
    # Options (order and delivery) are accepted both for the whole order and
    # per item.
    for name in ("globalDeliveryOptions", "localDeliveryOptions", "globalOrderOptions", "localOrderOptions"):
        submit.set(name, "true")
    # Core Req 6: GetStatus by id and by search, with full presentation.
    _flags(contents, _oseo("GetStatusCapabilities"), orderSearch=True, orderRetrieve=True, full=True)
    _flags(
        contents,
        _oseo("DescribeResultAccessCapabilities"),
        supported="DescribeResultAccess" in caps.operations,
    )
    cancel = "Cancel" in caps.operations
    _flags(contents, _oseo("CancelCapabilities"), supported=cancel, asynchronous=cancel and caps.cancel_asynchronous)
    for collection in caps.collections:
        _supported_collection(contents, collection, caps.cancel_asynchronous)
    _sub(_sub(contents, _oseo("ContentsType")), _oseo("supportedEncoding"), "XMLEncoding")


def render_capabilities(caps: ServiceCapabilities, sections: frozenset[str] | None = None) -> etree._Element:
    """The ``oseo:Capabilities`` document, limited to ``sections`` (None, or a
    set holding "All", means the whole document). Call ``negotiate`` first:
    unknown section names are simply not rendered here."""
    root = etree.Element(_oseo("Capabilities"), nsmap=_ROOT_NSMAP)
    root.set("version", VERSION)
    if caps.update_sequence is not None:
        root.set("updateSequence", caps.update_sequence)
    wanted = SECTIONS if sections is None or "All" in sections else sections
    if "ServiceIdentification" in wanted:
        _service_identification(root, caps.identification)
    if "ServiceProvider" in wanted:
        _service_provider(root, caps.provider)
    if "OperationsMetadata" in wanted:
        _operations_metadata(root, caps)
    if "Contents" in wanted:
        _contents(root, caps)
    if "Notifications" in wanted and caps.notification_producer is not None:
        root.append(render_notifications(caps.notification_producer))
    return root
