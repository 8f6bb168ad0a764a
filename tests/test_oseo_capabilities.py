"""oseod.oseo.capabilities: GetCapabilities requests, negotiation, and the
Capabilities document."""

from __future__ import annotations

import attrs
import pytest
from lxml import etree

from oseod.oseo.capabilities import (
    SECTIONS,
    CollectionCapability,
    GetCapabilitiesRequest,
    QuotationCapabilities,
    ServiceCapabilities,
    ServiceIdentification,
    ServiceProvider,
    negotiate,
    parse_get_capabilities,
    parse_get_capabilities_kvp,
    render_capabilities,
    select_sections,
)
from oseod.oseo.errors import ExceptionCode, OseoError
from oseod.oseo.namespaces import OSEO, OWS, XLINK
from oseod.oseo.soap import Encoding, content_type, unwrap, wrap
from tests.oseo_schema import SCHEMAS_DIR, assert_valid, requires_schemas

NS = {"oseo": OSEO, "ows": OWS, "xlink": XLINK}
ENDPOINT = "http://127.0.0.1:8080/oseo"
ALL_OPERATIONS = (
    "GetCapabilities", "GetOptions", "GetQuotation", "Submit", "GetStatus", "DescribeResultAccess", "Cancel",
)  # fmt: skip

IDENTIFICATION = ServiceIdentification(
    title="oseod ordering service",
    abstract="Orders EO products",
    keywords=("EO", "ordering"),
    fees="NONE",
    access_constraints=("registered users", "no resale"),
)
PROVIDER = ServiceProvider(
    name="oseod demo provider",
    site="https://example.org/",
    individual_name="Jane Operator",
    position_name="Help desk",
    phone="+351 000 000",
    email="help@example.org",
    delivery_point="1 Main Street",
    city="Lisbon",
    administrative_area="Lisboa",
    postal_code="1000-001",
    country="Portugal",
)
EMPTY_PROVIDER = ServiceProvider(name="x", **{f.name: "" for f in attrs.fields(ServiceProvider) if f.name != "name"})
DEMO = CollectionCapability("urn:oseod:demo", product_orders=True, subscription_orders=True, programming_orders=False)
CAPS = ServiceCapabilities(
    identification=IDENTIFICATION,
    provider=PROVIDER,
    endpoint_url=ENDPOINT,
    operations=ALL_OPERATIONS,
    collections=(DEMO,),
    product_orders=True,
    subscription_orders=True,
    programming_orders=False,
    quotation=QuotationCapabilities(
        supported=True, synchronous=True, asynchronous=False, monitoring=False, off_line=False
    ),
    submit_asynchronous=True,
    max_products=200,
    cancel_asynchronous=True,
)


def local_names(element: etree._Element) -> list[str]:
    return [str(etree.QName(child).localname) for child in element if isinstance(child.tag, str)]


def flags(element: etree._Element | None) -> dict[str, str]:
    assert element is not None
    return dict(element.attrib)


def oseo_error(call: object, *args: object) -> OseoError:
    with pytest.raises(OseoError) as info:
        call(*args)  # type: ignore[operator]
    assert info.value.sender is True
    return info.value


# ------------------------------------------------------------------ rendering


@requires_schemas
def test_full_document_is_valid_and_ordered() -> None:
    root = render_capabilities(CAPS)
    assert assert_valid(root) is root
    assert root.tag == f"{{{OSEO}}}Capabilities" and root.get("version") == "1.0.0"
    assert root.get("updateSequence") is None
    assert local_names(root) == ["ServiceIdentification", "ServiceProvider", "OperationsMetadata", "Contents"]
    ident = root.find("ows:ServiceIdentification", NS)
    assert ident is not None
    assert local_names(ident) == [
        "Title", "Abstract", "Keywords", "ServiceType", "ServiceTypeVersion", "Fees",
        "AccessConstraints", "AccessConstraints",
    ]  # fmt: skip
    assert ident.findtext("ows:ServiceType", namespaces=NS) == "OS"
    assert ident.findtext("ows:ServiceTypeVersion", namespaces=NS) == "1.0.0"
    assert ident.xpath("ows:Keywords/ows:Keyword/text()", namespaces=NS) == ["EO", "ordering"]


@requires_schemas
def test_service_provider_carries_every_field() -> None:
    provider = render_capabilities(CAPS, frozenset({"ServiceProvider"})).find("ows:ServiceProvider", NS)
    assert provider is not None
    assert local_names(provider) == ["ProviderName", "ProviderSite", "ServiceContact"]
    assert provider.xpath("ows:ProviderSite/@xlink:href", namespaces=NS) == ["https://example.org/"]
    contact = provider.find("ows:ServiceContact", NS)
    assert contact is not None
    assert local_names(contact) == ["IndividualName", "PositionName", "ContactInfo"]
    info = contact.find("ows:ContactInfo", NS)
    assert info is not None and local_names(info) == ["Phone", "Address"]
    assert info.findtext("ows:Phone/ows:Voice", namespaces=NS) == "+351 000 000"
    address = info.find("ows:Address", NS)
    assert address is not None
    assert local_names(address) == [
        "DeliveryPoint", "City", "AdministrativeArea", "PostalCode", "Country", "ElectronicMailAddress",
    ]  # fmt: skip
    assert address.findtext("ows:ElectronicMailAddress", namespaces=NS) == "help@example.org"


@requires_schemas
def test_empty_provider_fields_are_left_out() -> None:
    caps = attrs.evolve(
        CAPS,
        provider=EMPTY_PROVIDER,
        identification=ServiceIdentification(title="", abstract="", keywords=(), fees="", access_constraints=()),
    )
    root = render_capabilities(caps)
    assert_valid(root)
    provider = root.find("ows:ServiceProvider", NS)
    assert provider is not None and local_names(provider) == ["ProviderName", "ServiceContact"]
    assert local_names(provider.find("ows:ServiceContact", NS)) == []  # type: ignore[arg-type]
    ident = root.find("ows:ServiceIdentification", NS)
    assert ident is not None and local_names(ident) == ["ServiceType", "ServiceTypeVersion"]


@requires_schemas
@pytest.mark.parametrize("only", ["phone", "email", "city"])
def test_partial_contact_info_is_valid(only: str) -> None:
    provider = attrs.evolve(EMPTY_PROVIDER, **{only: "value"})
    root = render_capabilities(attrs.evolve(CAPS, provider=provider), frozenset({"ServiceProvider"}))
    assert_valid(root)
    assert root.xpath("count(//ows:ContactInfo)", namespaces=NS) == 1
    assert root.xpath("count(//ows:Address)", namespaces=NS) == (0 if only == "phone" else 1)


@requires_schemas
def test_operations_metadata() -> None:
    metadata = render_capabilities(CAPS, frozenset({"OperationsMetadata"})).find("ows:OperationsMetadata", NS)
    assert metadata is not None
    assert metadata.xpath("ows:Operation/@name", namespaces=NS) == list(ALL_OPERATIONS)
    posts = metadata.xpath("ows:Operation/ows:DCP/ows:HTTP/ows:Post/@xlink:href", namespaces=NS)
    assert posts == [ENDPOINT] * len(ALL_OPERATIONS)
    gets = metadata.xpath("ows:Operation/ows:DCP/ows:HTTP/ows:Get", namespaces=NS)
    assert len(gets) == 1
    assert gets[0].xpath("string(../../../@name)") == "GetCapabilities"
    assert gets[0].get(f"{{{XLINK}}}href") == ENDPOINT + "?"
    encodings = metadata.xpath(
        "ows:Operation[@name='Submit']//ows:Post/ows:Constraint[@name='PostEncoding']"
        "/ows:AllowedValues/ows:Value/text()",
        namespaces=NS,
    )
    assert encodings == ["SOAP", "XML"]


@pytest.mark.parametrize(
    ("endpoint", "prefix"),
    [
        ("http://h/oseo", "http://h/oseo?"),
        ("http://h/oseo?key=1", "http://h/oseo?key=1&"),
        ("http://h/o?", "http://h/o?"),
    ],
)
def test_get_href_is_a_kvp_prefix(endpoint: str, prefix: str) -> None:
    root = render_capabilities(attrs.evolve(CAPS, endpoint_url=endpoint), frozenset({"OperationsMetadata"}))
    assert root.xpath("//ows:Get/@xlink:href", namespaces=NS) == [prefix]


@requires_schemas
def test_contents() -> None:
    contents = render_capabilities(CAPS, frozenset({"Contents"})).find("oseo:Contents", NS)
    assert contents is not None
    assert local_names(contents) == [
        "ProductOrders", "SubscriptionOrders", "ProgrammingOrders", "GetQuotationCapabilities",
        "SubmitCapabilities", "GetStatusCapabilities", "DescribeResultAccessCapabilities",
        "CancelCapabilities", "SupportedCollection", "ContentsType",
    ]  # fmt: skip
    assert flags(contents.find("oseo:ProductOrders", NS)) == {"supported": "true"}
    assert flags(contents.find("oseo:ProgrammingOrders", NS)) == {"supported": "false"}
    assert flags(contents.find("oseo:GetQuotationCapabilities", NS)) == {
        "supported": "true", "synchronous": "true", "asynchronous": "false", "monitoring": "false", "off-line": "false",
    }  # fmt: skip
    assert flags(contents.find("oseo:SubmitCapabilities", NS)) == {
        "asynchronous": "true", "maxNumberOfProducts": "200", "globalDeliveryOptions": "true",
        "localDeliveryOptions": "true", "globalOrderOptions": "true", "localOrderOptions": "true",
    }  # fmt: skip
    assert flags(contents.find("oseo:GetStatusCapabilities", NS)) == {
        "orderSearch": "true", "orderRetrieve": "true", "full": "true",
    }  # fmt: skip
    assert flags(contents.find("oseo:DescribeResultAccessCapabilities", NS)) == {"supported": "true"}
    assert flags(contents.find("oseo:CancelCapabilities", NS)) == {"supported": "true", "asynchronous": "true"}
    assert contents.xpath("oseo:ContentsType/oseo:supportedEncoding/text()", namespaces=NS) == ["XMLEncoding"]


@requires_schemas
def test_cancel_and_result_access_follow_the_operations() -> None:
    caps = attrs.evolve(CAPS, operations=("GetCapabilities", "GetStatus", "Submit"))
    root = render_capabilities(caps)
    assert_valid(root)
    contents = root.find("oseo:Contents", NS)
    assert contents is not None
    assert flags(contents.find("oseo:DescribeResultAccessCapabilities", NS)) == {"supported": "false"}
    assert flags(contents.find("oseo:CancelCapabilities", NS)) == {"supported": "false", "asynchronous": "false"}


@requires_schemas
def test_several_collections_with_overrides() -> None:
    collections = (
        DEMO,
        CollectionCapability("urn:x:subs-only", False, True, False, cancel=False, describe_result_access=False),
        CollectionCapability("urn:x:tasking", True, False, True),
    )
    root = render_capabilities(attrs.evolve(CAPS, collections=collections, cancel_asynchronous=False))
    assert_valid(root)
    supported = root.findall("oseo:Contents/oseo:SupportedCollection", NS)
    assert [s.findtext("oseo:collectionId", namespaces=NS) for s in supported] == [c.collection_id for c in collections]
    second = supported[1]
    assert local_names(second) == [
        "collectionId", "ProductOrders", "SubscriptionOrders", "DescribeResultAccessCapabilities", "CancelCapabilities",
    ]  # fmt: skip
    assert flags(second.find("oseo:ProductOrders", NS)) == {"supported": "false"}
    assert flags(second.find("oseo:SubscriptionOrders", NS)) == {"supported": "true"}
    assert flags(second.find("oseo:DescribeResultAccessCapabilities", NS)) == {"supported": "false"}
    assert flags(second.find("oseo:CancelCapabilities", NS)) == {"supported": "false", "asynchronous": "false"}
    assert flags(supported[0].find("oseo:CancelCapabilities", NS)) == {"supported": "true", "asynchronous": "false"}


@requires_schemas
def test_zero_collections() -> None:
    root = render_capabilities(attrs.evolve(CAPS, collections=()))
    assert_valid(root)
    assert root.findall("oseo:Contents/oseo:SupportedCollection", NS) == []


RENDERED = {"ServiceIdentification", "ServiceProvider", "OperationsMetadata", "Contents"}


@requires_schemas
@pytest.mark.parametrize("section", sorted(SECTIONS))
def test_each_section_alone(section: str) -> None:
    root = render_capabilities(CAPS, frozenset({section}))
    assert_valid(root)
    if section == "All":
        assert set(local_names(root)) == RENDERED
    else:
        assert local_names(root) == ([section] if section in RENDERED else [])


@requires_schemas
def test_section_combinations_keep_schema_order() -> None:
    root = render_capabilities(CAPS, frozenset({"Contents", "ServiceIdentification"}))
    assert_valid(root)
    assert local_names(root) == ["ServiceIdentification", "Contents"]
    assert len(render_capabilities(CAPS, frozenset({"Contents", "All"}))) == 4
    empty = render_capabilities(CAPS, frozenset())
    assert_valid(empty)
    assert len(empty) == 0


@requires_schemas
def test_update_sequence_is_advertised() -> None:
    root = render_capabilities(attrs.evolve(CAPS, update_sequence="7"))
    assert_valid(root)
    assert root.get("updateSequence") == "7"


@requires_schemas
@pytest.mark.parametrize("encoding", list(Encoding))
def test_wrapped_capabilities_are_valid(encoding: Encoding) -> None:
    data = wrap(encoding, render_capabilities(CAPS))
    payload = assert_valid(data)
    assert payload.tag == f"{{{OSEO}}}Capabilities"
    assert unwrap(data, content_type(encoding)).encoding is encoding


def test_capabilities_need_two_operations() -> None:
    # ows:OperationsMetadata requires at least two ows:Operation.
    with pytest.raises(ValueError, match="at least two"):
        attrs.evolve(CAPS, operations=("GetCapabilities",))


def test_same_structure_as_the_official_sample() -> None:
    sample_path = SCHEMAS_DIR / "oseo" / "1.0" / "SampleMessages" / "Capabilities.xml"
    if not sample_path.is_file():
        pytest.skip(f"{sample_path} not found")
    sample = etree.parse(str(sample_path)).getroot()
    ours = render_capabilities(CAPS)
    # The global flags of Contents come in the sample's order (the sample has
    # no ContentsType), and the operations as the sample lists them.
    assert local_names(ours.xpath("oseo:Contents", namespaces=NS)[0])[:8] == local_names(
        sample.xpath("oseo:Contents", namespaces=NS)[0]
    )[:8]
    operations = "ows:OperationsMetadata/ows:Operation/@name"
    assert sorted(ours.xpath(operations, namespaces=NS)) == sorted(sample.xpath(operations, namespaces=NS))


# -------------------------------------------------------- parsing (XML body)


def gc(attributes: str = 'service="OS"', children: str = "") -> etree._Element:
    return etree.fromstring(
        f'<oseo:GetCapabilities xmlns:oseo="{OSEO}" xmlns:ows="{OWS}" {attributes}>{children}</oseo:GetCapabilities>'
    )


def test_parse_minimal_request() -> None:
    assert parse_get_capabilities(gc()) == GetCapabilitiesRequest((), None, None)


def test_parse_full_request() -> None:
    request = parse_get_capabilities(
        gc(
            'service="OS" updateSequence="12"',
            "<ows:AcceptVersions>"
            "<ows:Version> 2.0.0 </ows:Version><ows:Version>1.0.0</ows:Version>"
            "</ows:AcceptVersions>"
            "<ows:Sections><ows:Section>Contents</ows:Section><ows:Section>ServiceProvider</ows:Section></ows:Sections>"
            "<ows:AcceptFormats><ows:OutputFormat>text/xml</ows:OutputFormat></ows:AcceptFormats>"
            "<ows:AcceptLanguages><ows:Language>en</ows:Language></ows:AcceptLanguages>",
        )
    )
    assert request == GetCapabilitiesRequest(("2.0.0", "1.0.0"), frozenset({"Contents", "ServiceProvider"}), "12")
    negotiate(request)


def test_parse_empty_sections_means_no_section() -> None:
    assert parse_get_capabilities(gc(children="<ows:Sections/>")).sections == frozenset()


@pytest.mark.parametrize(
    ("attributes", "children", "code", "locator"),
    [
        ("", "", ExceptionCode.MissingParameterValue, "service"),
        ('service=""', "", ExceptionCode.MissingParameterValue, "service"),
        ('service="WMS"', "", ExceptionCode.InvalidParameterValue, "service"),
        ('service="os"', "", ExceptionCode.InvalidParameterValue, "service"),
        ('service="OS"', "<ows:AcceptVersions/>", ExceptionCode.MissingParameterValue, "AcceptVersions"),
        ('service="OS"', "<ows:Sections><ows:Bogus/></ows:Sections>", ExceptionCode.InvalidParameterValue, "Bogus"),
        ('service="OS"', "<oseo:Sections/>", ExceptionCode.InvalidParameterValue, "Sections"),
        ('service="OS"', "<ows:Sections/><ows:Sections/>", ExceptionCode.InvalidParameterValue, "Sections"),
    ],
)
def test_parse_errors(attributes: str, children: str, code: ExceptionCode, locator: str) -> None:
    error = oseo_error(parse_get_capabilities, gc(attributes, children))
    assert (error.code, error.locator) == (code, locator)


def test_parse_refuses_another_element() -> None:
    other = etree.fromstring(f'<ows:GetCapabilities xmlns:ows="{OWS}" service="OS"/>')
    error = oseo_error(parse_get_capabilities, other)
    assert error.code is ExceptionCode.OperationNotSupported
    assert "oseo:GetCapabilities" in error.text


def test_parse_official_sample() -> None:
    path = SCHEMAS_DIR / "oseo" / "1.0" / "SampleMessages" / "GetCapabilities.xml"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    message = unwrap(path.read_bytes(), "application/xml")
    request = parse_get_capabilities(message.payload)
    # updateSequence="" in the sample: an empty value is no value.
    assert request == GetCapabilitiesRequest(("1.0.0",), None, None)
    negotiate(request)


def test_parse_soapui_sample_with_placeholders() -> None:
    soapui = SCHEMAS_DIR.parent / "samples" / "pyoseo" / "derived" / "soapui-requests"
    path = soapui / "testsuite__IpmaTestSuite__GetCapabilities__00_Request_1.xml"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    request = parse_get_capabilities(unwrap(path.read_bytes(), "text/xml; charset=UTF-8").payload)
    # SoapUI's "?" placeholders: a version nobody implements, a section nobody knows.
    assert request == GetCapabilitiesRequest(("?",), frozenset({"?"}), "?")
    error = oseo_error(negotiate, request)
    assert (error.code, error.locator) == (ExceptionCode.VersionNegotiationFailed, "AcceptVersions")


# ------------------------------------------------------------ parsing (KVP)


def test_kvp_minimal() -> None:
    request = parse_get_capabilities_kvp({"service": "OS", "request": "GetCapabilities"})
    assert request == GetCapabilitiesRequest((), None, None)


def test_kvp_keys_are_case_insensitive() -> None:
    request = parse_get_capabilities_kvp(
        {
            "SERVICE": "OS",
            "Request": "GetCapabilities",
            "acceptversions": "1.0.0, 2.0.0",
            "SECTIONS": "Contents,OperationsMetadata,",
            "UpdateSequence": "3",
            "acceptFormats": "text/xml",
            "version": "9.9.9",
        }
    )
    assert request == GetCapabilitiesRequest(("1.0.0", "2.0.0"), frozenset({"Contents", "OperationsMetadata"}), "3")


def test_kvp_empty_sections_means_no_section() -> None:
    assert parse_get_capabilities_kvp({"service": "OS", "request": "GetCapabilities", "Sections": ""}).sections == (
        frozenset()
    )


@pytest.mark.parametrize(
    ("params", "code", "locator"),
    [
        ({"request": "GetCapabilities"}, ExceptionCode.MissingParameterValue, "service"),
        ({"service": "", "request": "GetCapabilities"}, ExceptionCode.MissingParameterValue, "service"),
        ({"service": "WMS", "request": "GetCapabilities"}, ExceptionCode.InvalidParameterValue, "service"),
        ({"service": "OS"}, ExceptionCode.MissingParameterValue, "request"),
        ({"service": "OS", "request": ""}, ExceptionCode.MissingParameterValue, "request"),
        ({"service": "OS", "request": "Submit"}, ExceptionCode.OperationNotSupported, "Submit"),
        ({"service": "OS", "request": "getcapabilities"}, ExceptionCode.OperationNotSupported, "getcapabilities"),
        (
            {"service": "OS", "request": "GetCapabilities", "AcceptVersions": " , "},
            ExceptionCode.MissingParameterValue,
            "AcceptVersions",
        ),
        (
            {"service": "OS", "SERVICE": "WMS", "request": "GetCapabilities"},
            ExceptionCode.InvalidParameterValue,
            "SERVICE",
        ),
    ],
)
def test_kvp_errors(params: dict[str, str], code: ExceptionCode, locator: str) -> None:
    error = oseo_error(parse_get_capabilities_kvp, params)
    assert (error.code, error.locator) == (code, locator)


def test_kvp_same_value_twice_is_fine() -> None:
    assert parse_get_capabilities_kvp({"service": "OS", "Service": "OS", "request": "GetCapabilities"}).sections is None


# ---------------------------------------------------------------- negotiation


@pytest.mark.parametrize(
    "request_",
    [
        GetCapabilitiesRequest(),
        GetCapabilitiesRequest(("1.0.0",)),
        GetCapabilitiesRequest(("3.0.0", "1.0.0")),
        GetCapabilitiesRequest(sections=frozenset(SECTIONS)),
        GetCapabilitiesRequest(sections=frozenset()),
    ],
)
def test_negotiation_accepts(request_: GetCapabilitiesRequest) -> None:
    negotiate(request_)


@pytest.mark.parametrize("versions", [("2.0.0",), ("1.0",), ("0.9.4", "1.0.1")])
def test_version_negotiation_fails_without_1_0_0(versions: tuple[str, ...]) -> None:
    error = oseo_error(negotiate, GetCapabilitiesRequest(versions))
    assert (error.code, error.locator) == (ExceptionCode.VersionNegotiationFailed, "AcceptVersions")
    assert f'"{versions[0]}"' in error.text and "1.0.0" in error.text


@pytest.mark.parametrize("section", ["Bogus", "contents", "ServiceMetadata"])
def test_unknown_section_is_refused(section: str) -> None:
    error = oseo_error(negotiate, GetCapabilitiesRequest(sections=frozenset({"Contents", section})))
    assert (error.code, error.locator) == (ExceptionCode.InvalidParameterValue, "Sections")
    assert f'"{section}"' in error.text


def test_select_sections_honours_update_sequence() -> None:
    request = GetCapabilitiesRequest(sections=frozenset({"Contents"}), update_sequence="5")
    assert select_sections(request, CAPS) == frozenset({"Contents"})  # server has no sequence
    assert select_sections(request, attrs.evolve(CAPS, update_sequence="6")) == frozenset({"Contents"})
    current = attrs.evolve(CAPS, update_sequence="5")
    assert select_sections(request, current) == frozenset()
    root = render_capabilities(current, select_sections(request, current))
    assert len(root) == 0 and root.get("updateSequence") == "5" and root.get("version") == "1.0.0"
