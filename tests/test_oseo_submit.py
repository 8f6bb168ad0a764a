"""oseod.oseo.submit: Submit requests (order specification, items, options,
delivery, fragments kept for the echo) and the SubmitAck."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from lxml import etree

from oseod.model.orders import (
    DeliveryChoice,
    DeliveryMethod,
    ItemSpec,
    OnlineAddress,
    OptionValue,
    OrderType,
    Priority,
    StatusNotification,
)
from oseod.oseo.common import integer
from oseod.oseo.errors import ExceptionCode, OseoError
from oseod.oseo.namespaces import OSEO, OSEO_ELEMENTS, SOAP11, WSSE
from oseod.oseo.soap import Encoding, unwrap, wrap
from oseod.oseo.submit import SubmitRequest, parse_submit, render_submit_ack
from tests.oseo_schema import SCHEMAS_DIR, assert_valid, requires_schemas

SAMPLES = SCHEMAS_DIR / "oseo" / "1.0" / "SampleMessages"
EXAMPLES = SCHEMAS_DIR / "examples"
DERIVED = SCHEMAS_DIR.parent / "samples" / "pyoseo" / "derived"
SOAPUI = DERIVED / "soapui-requests"
# The SoapUI project's suite properties (samples/pyoseo/README.md).
SOAPUI_PROPERTIES = {
    "userName": "ricardogsilva", "submitDeliveryProtocol": "ftp", "submitPackagingFormat": "zip",
    "getStatusPresentation": "brief", "describeResultAccessSubFunction": "allReady", "currentOrderId": "42",
}  # fmt: skip

# Every oseo.xsd element a Submit may carry, each once at least.
FULL = """<Submit xmlns="http://www.opengis.net/oseo/1.0" xmlns:d="urn:dataset" service="OS" version="1.0.0">
  <timeStamp>2024-03-01T10:00:00Z</timeStamp>
  <orderSpecification>
    <orderReference>ref-1</orderReference>
    <orderRemark>please hurry</orderRemark>
    <deliveryInformation>
      <onlineAddress>
        <protocol>ftp</protocol><serverAddress>ftp.client.example</serverAddress>
        <userName>ftpuser</userName><userPassword>ftppass</userPassword><path>/in/box</path>
      </onlineAddress>
      <onlineAddress><protocol>sftp</protocol><serverAddress>sftp.client.example</serverAddress></onlineAddress>
      <mailAddress>
        <firstName>Ana</firstName><lastName>Silva</lastName><companyRef>IPMA</companyRef>
        <postalAddress>
          <streetAddress>Rua C</streetAddress><city>Lisboa</city><state>-</state>
          <postalCode>1749-077</postalCode><country>PT</country><postBox>12</postBox>
        </postalAddress>
        <telephoneNumber>+351218447000</telephoneNumber>
        <facsimileTelephoneNumber>+351218402468</facsimileTelephoneNumber>
      </mailAddress>
    </deliveryInformation>
    <invoiceAddress><firstName>Bill</firstName><lastName>Payer</lastName></invoiceAddress>
    <packaging>zip</packaging>
    <option><ParameterData><encoding>XMLEncoding</encoding>
      <values><d:format> GeoTIFF </d:format><d:bands>1 2 3</d:bands></values></ParameterData></option>
    <option><ParameterData><encoding>XMLEncoding</encoding>
      <values><d:rescale>true</d:rescale></values></ParameterData></option>
    <deliveryOptions>
      <onlineDataDelivery><protocol>ftp</protocol></onlineDataDelivery>
      <numberOfCopies>1</numberOfCopies><productAnnotation>note</productAnnotation>
      <specialInstructions>none</specialInstructions>
    </deliveryOptions>
    <priority>FAST_TRACK</priority>
    <orderType>PRODUCT_ORDER</orderType>
    <extension>order-ext-1</extension>
    <extension>order-ext-2</extension>
    <orderItem>
      <itemId>item-1</itemId>
      <productOrderOptionsId>PRODUCT_ORDER</productOrderOptionsId>
      <orderItemRemark>first</orderItemRemark>
      <option><ParameterData><encoding>XMLEncoding</encoding>
        <values><d:format>NetCDF</d:format></values></ParameterData></option>
      <sceneSelection><ParameterData><encoding>XMLEncoding</encoding>
        <values><d:sceneType>FloatingScene</d:sceneType></values></ParameterData></sceneSelection>
      <deliveryOptions><mediaDelivery><packageMedium>DVD</packageMedium>
        <shippingInstructions>once all products are ready</shippingInstructions></mediaDelivery></deliveryOptions>
      <payment><paymentMethod>quota</paymentMethod><orderAccount>project-9</orderAccount></payment>
      <extension>item-ext</extension>
      <productId><identifier>urn:p:1</identifier><collectionId>urn:c:demo</collectionId></productId>
    </orderItem>
    <orderItem>
      <itemId>item-2</itemId>
      <productId><identifier>urn:p:2</identifier></productId>
    </orderItem>
  </orderSpecification>
  <statusNotification>All</statusNotification>
</Submit>"""


def parse(xml: str) -> SubmitRequest:
    return parse_submit(etree.fromstring(xml.encode()))


def error_of(call: Callable[..., object], *args: object) -> OseoError:
    with pytest.raises(OseoError) as info:
        call(*args)
    assert info.value.sender
    return info.value


def refused(xml: str, code: ExceptionCode, locator: str, phrase: str = "") -> OseoError:
    error = error_of(parse, xml)
    assert (error.code, error.locator) == (code, locator), error
    assert phrase in error.text, error.text
    return error


def replaced(old: str, new: str, xml: str = FULL) -> str:
    assert old in xml, old
    return xml.replace(old, new, 1)


def soapui(name: str) -> etree._Element:
    text = (SOAPUI / name).read_text()
    for key, value in SOAPUI_PROPERTIES.items():
        text = text.replace("${#TestSuite#%s}" % key, value)
    return unwrap(text.encode(), None).payload


def payload(path: Path) -> etree._Element:
    return unwrap(path.read_bytes(), None).payload


# --------------------------------------------------------------- full parse


def test_every_field_of_a_full_submit() -> None:
    request = parse(FULL)
    assert request.quotation_id is None
    assert request.status_notification is StatusNotification.ALL
    spec = request.spec
    assert spec is not None
    assert spec.order_type is OrderType.PRODUCT_ORDER
    assert (spec.reference, spec.remark, spec.packaging, spec.priority) == (
        "ref-1", "please hurry", "zip", Priority.FAST_TRACK)
    assert spec.options == (OptionValue("format", "GeoTIFF"), OptionValue("bands", "1 2 3"),
                            OptionValue("rescale", "true"))
    assert spec.delivery == DeliveryChoice(DeliveryMethod.ONLINE_DATA_DELIVERY, protocol="ftp")
    assert spec.online_addresses == (
        OnlineAddress("ftp", "ftp.client.example", "ftpuser", "ftppass", "/in/box"),
        OnlineAddress("sftp", "sftp.client.example"),
    )
    assert [f.name for f in spec.fragments] == [
        "deliveryInformation", "invoiceAddress", "option", "option", "deliveryOptions", "extension", "extension"]
    first, second = spec.items
    assert first.item_id == "item-1"
    assert (first.product_id, first.collection_id, first.tasking_request_id, first.subscription) == (
        "urn:p:1", "urn:c:demo", None, False)
    assert (first.product_order_options_id, first.remark, first.payment_method) == ("PRODUCT_ORDER", "first", "quota")
    assert first.options == (OptionValue("format", "NetCDF"),)
    assert first.delivery == DeliveryChoice(DeliveryMethod.MEDIA_DELIVERY, package_medium="DVD")
    assert [f.name for f in first.fragments] == ["option", "sceneSelection", "deliveryOptions", "payment", "extension"]
    assert second == ItemSpec(item_id="item-2", product_id="urn:p:2")


def test_fragments_stand_alone_and_keep_the_client_xml() -> None:
    spec = parse(FULL).spec
    assert spec is not None
    for fragment in spec.fragments + spec.items[0].fragments:
        element = etree.fromstring(fragment.xml)
        assert element.tag == f"{{{OSEO}}}{fragment.name}"
    option = etree.fromstring(spec.items[0].fragments[0].xml)
    assert option.findtext(".//{urn:dataset}format") == "NetCDF"
    extension = etree.fromstring(spec.fragments[-1].xml)
    assert extension.text == "order-ext-2"


def test_fragments_drop_the_envelope_namespaces_only() -> None:
    envelope = (
        f'<s:Envelope xmlns:s="{SOAP11}" xmlns:wsse="{WSSE}" xmlns:o="{OSEO}" xmlns:x="urn:x" xmlns:gml="urn:gml">'
        f"<s:Header/><s:Body>{FULL}</s:Body></s:Envelope>"
    )
    body = replaced("<d:rescale>true</d:rescale>", '<d:rescale xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
                    'xsi:type="x:flag">true</d:rescale>', envelope)
    spec = parse_submit(unwrap(body.encode(), None).payload).spec
    assert spec is not None
    for fragment in spec.fragments:
        assert SOAP11 not in fragment.xml and WSSE not in fragment.xml
        # Declarations a fragment does not use are not repeated in it.
        assert "urn:gml" not in fragment.xml
    # A prefix a value refers to (xsi:type="x:flag") is still declared.
    option = next(f for f in spec.fragments if "x:flag" in f.xml)
    assert etree.fromstring(option.xml).nsmap["x"] == "urn:x"


def test_credit_card_numbers_are_masked_in_the_kept_payment() -> None:
    xml = replaced("<orderAccount>project-9</orderAccount>", "<creditCardInfo>4111111111111111</creditCardInfo>")
    spec = parse(xml).spec
    assert spec is not None
    payment = next(f for f in spec.items[0].fragments if f.name == "payment")
    assert "4111111111111111" not in payment.xml
    assert etree.fromstring(payment.xml).findtext(f"{{{OSEO}}}creditCardInfo") == "*" * 12 + "1111"


def test_whitespace_around_values_is_tolerated() -> None:
    xml = (FULL.replace("<orderType>PRODUCT_ORDER</orderType>", "<orderType>\n  PRODUCT_ORDER\n</orderType>")
           .replace("<itemId>item-2</itemId>", "<itemId> item-2 </itemId>")
           .replace("<packaging>zip</packaging>", "<packaging> zip</packaging>"))
    spec = parse(xml).spec
    assert spec is not None and spec.items[1].item_id == "item-2" and spec.packaging == "zip"


def test_nil_packaging_and_minimal_order() -> None:
    xml = (f'<Submit xmlns="{OSEO}" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" service="OS" '
           'version="1.0.0"><orderSpecification><packaging xsi:nil="true"/><orderType>PRODUCT_ORDER</orderType>'
           "<orderItem><itemId>i</itemId><productId><identifier>p</identifier></productId></orderItem>"
           "</orderSpecification><statusNotification>None</statusNotification></Submit>")
    spec = parse(xml).spec
    assert spec is not None
    assert (spec.packaging, spec.reference, spec.priority, spec.delivery) == (None, None, None, None)
    assert spec.fragments == ()


def test_subscription_and_tasking_items() -> None:
    subscription = replaced("<orderType>PRODUCT_ORDER</orderType>", "<orderType>SUBSCRIPTION_ORDER</orderType>")
    subscription = subscription.replace(
        "<productId><identifier>urn:p:1</identifier><collectionId>urn:c:demo</collectionId></productId>",
        "<subscriptionId><collectionId>urn:c:demo</collectionId></subscriptionId>",
    ).replace("<productId><identifier>urn:p:2</identifier></productId>",
              "<subscriptionId><collectionId>urn:c:other</collectionId></subscriptionId>")
    spec = parse(subscription).spec
    assert spec is not None and spec.order_type is OrderType.SUBSCRIPTION_ORDER
    assert [(i.subscription, i.collection_id, i.product_id) for i in spec.items] == [
        (True, "urn:c:demo", None), (True, "urn:c:other", None)]
    tasking = replaced("<orderType>PRODUCT_ORDER</orderType>", "<orderType>TASKING_ORDER</orderType>")
    tasking = tasking.replace(
        "<productId><identifier>urn:p:1</identifier><collectionId>urn:c:demo</collectionId></productId>",
        "<taskingRequestId><ID>urn:sps:1</ID></taskingRequestId>",
    ).replace("<productId><identifier>urn:p:2</identifier></productId>",
              "<taskingRequestId><ID>urn:sps:2</ID></taskingRequestId>")
    spec = parse(tasking).spec
    assert spec is not None and [i.tasking_request_id for i in spec.items] == ["urn:sps:1", "urn:sps:2"]


def test_submit_by_quotation() -> None:
    request = parse(f'<Submit xmlns="{OSEO}" service="OS" version="1.0.0"><quotationId>urn:q:1</quotationId>'
                    "<statusNotification>Final</statusNotification></Submit>")
    assert request == SubmitRequest(None, "urn:q:1", StatusNotification.FINAL)


def test_string_limits_are_inclusive() -> None:
    xml = (FULL.replace("ref-1", "r" * 30).replace("item-1", "i" * 80).replace("ftpuser", "u" * 8)
           .replace("ftppass", "p" * 20).replace("please hurry", "h" * 4000))
    spec = parse(xml).spec
    assert spec is not None and spec.reference == "r" * 30 and spec.items[0].item_id == "i" * 80


# ---------------------------------------------------------------- samples


def test_official_submit_sample() -> None:
    request = parse_submit(payload(SAMPLES / "Submit.xml"))
    spec = request.spec
    assert spec is not None
    assert request.status_notification is StatusNotification.FINAL
    assert (spec.reference, spec.remark) == ("example_0001", "example")
    assert [f.name for f in spec.fragments] == ["deliveryInformation"]
    (item,) = spec.items
    assert item.options == (OptionValue("processingLevel", "1B"), OptionValue("productType", "ASA_IMS_1P"),
                            OptionValue("qualityOfService", "STANDARD"))
    assert item.delivery == DeliveryChoice(DeliveryMethod.MEDIA_DELIVERY, package_medium="CD-ROM")
    assert item.payment_method == "quota"
    assert item.collection_id == "http://www.opengis.net/def/EOP/ESA/0/ESA.EECF.ENVISAT_ASA_IMx_xS"
    assert [f.name for f in item.fragments] == ["option", "sceneSelection", "deliveryOptions", "payment"]
    assert parse_submit(payload(SAMPLES / "Submit2.xml")).spec is not None


def test_pyoseo_samples() -> None:
    for path in (EXAMPLES / "pyoseo-samples" / "Submit.xml", EXAMPLES / "pyoseo-samples" / "Submit_with_options.xml",
                 DERIVED / "docs" / "submit_example_1.xml"):
        spec = parse_submit(payload(path)).spec
        assert spec is not None and spec.delivery is not None and spec.delivery.method.value == "onlineDataAccess"
    spec = parse_submit(payload(EXAMPLES / "pyoseo-samples" / "Submit_with_options.xml")).spec
    assert spec is not None
    assert spec.options == (OptionValue("Format", "GeoTiff"),)
    assert spec.items[0].options == (OptionValue("Format", "NetCDF"), OptionValue("MapProjection", "LAT_LONG"),
                                     OptionValue("RegionOfInterest", "Outra"))
    handwritten = parse_submit(payload(EXAMPLES / "handwritten" / "soap12-submit-async-wsa-wsse.xml"))
    assert handwritten.status_notification is StatusNotification.ALL


SOAPUI_SUBMITS = sorted(p.name for p in SOAPUI.glob("*Submit*.xml") if "Response" not in p.name)


@pytest.mark.parametrize("name", SOAPUI_SUBMITS)
def test_soapui_submits_parse_or_fail_with_an_oseo_error(name: str) -> None:
    """Each SoapUI request, as stored (with its ${...} placeholders): a
    request, or the OseoError the placeholder or the deliberate fault earns."""
    element = unwrap((SOAPUI / name).read_bytes(), None).payload
    expected = {
        "interface__OSEO_V100_ServicePortBinding__Submit__Request_1.xml": ("InvalidParameterValue", "version"),
        "testsuite__IpmaTestSuite__Submit__03_ProductOrder_illegal_packaging.xml": ("InvalidParameterValue",
                                                                                     "packaging"),
        "testsuite__IpmaTestSuite__Submit__05_Invalid_operation.xml": ("OperationNotSupported", "Submits"),
        "testsuite__IpmaTestSuite__Submit__06_Invalid_element.xml": ("InvalidParameterValue",
                                                                      "fakeOrderSpecification"),
        "testsuite__product_order__onlinedataaccess_no_options_packaging__00_Submit.xml": ("InvalidParameterValue",
                                                                                            "packaging"),
        "testsuite__product_order__onlinedataaccess_options_and_no_packaging__00_Submit.xml": (
            "InvalidParameterValue", "protocol"),
        "testsuite__product_order__onlinedataaccess_options_and_packaging__00_Submit.xml": ("InvalidParameterValue",
                                                                                             "packaging"),
    }
    if name in expected:
        error = error_of(parse_submit, element)
        assert (error.code.value, error.locator) == expected[name]
    else:
        assert parse_submit(element).spec is not None


@pytest.mark.parametrize("name", [n for n in SOAPUI_SUBMITS if "__00_Submit" in n or "ProductOrder" in n])
def test_soapui_submits_with_their_suite_properties(name: str) -> None:
    if "illegal_packaging" in name:
        error = error_of(parse_submit, soapui(name))
        assert "FAKE PACKAGING OPTION" in error.text
        return
    spec = parse_submit(soapui(name)).spec
    assert spec is not None and spec.reference == "Some random reference" and len(spec.items) >= 5


def test_soapui_gml_option_value() -> None:
    spec = parse_submit(soapui("testsuite__IpmaTestSuite__Submit__01_ProductOrder_options.xml")).spec
    assert spec is not None
    assert spec.items[0].options == (OptionValue("RegionOfInterest", ""),)
    kept = etree.fromstring(spec.items[0].fragments[0].xml)
    assert kept.find(".//{http://www.opengis.net/gml}lowerCorner") is not None


@pytest.mark.parametrize(
    "value",
    [
        '<oseo:GetStatus xmlns:oseo="http://www.opengis.net/oseo/1.0">x</oseo:GetStatus>',
        '<d:format><g:Point xmlns:g="http://www.opengis.net/gml/3.2"/></d:format>',
        '<d:format xmlns:xlink="http://www.w3.org/1999/xlink" xlink:type="nonsense">GeoTIFF</d:format>',
        '<d:format xml:lang="%%">GeoTIFF</d:format>',
    ],
)
def test_option_values_from_a_standard_namespace_are_refused(value: str) -> None:
    # values is xs:anyType, validated laxly: such a value would make every
    # later GetStatus echo of the order schema-invalid (found by the fuzzer)
    xml = replaced("<d:format> GeoTIFF </d:format>", value)
    error = refused(xml, E.InvalidParameterValue, "values")
    assert "provider's own" in error.text


@pytest.mark.parametrize(("text", "copies"), [("0" * 50_000 + "3", 3), ("+07", 7), ("2147483647", 2**31 - 1)])
def test_integers_as_xs_int_spells_them(text: str, copies: int) -> None:
    assert integer(etree.fromstring(f"<n>{text}</n>")) == copies
    assert parse(replaced("<numberOfCopies>1</numberOfCopies>", f"<numberOfCopies>{text}</numberOfCopies>")).spec


def test_option_values_may_use_undeclared_oseo_names() -> None:
    xml = replaced("<d:format> GeoTIFF </d:format>", '<o:Format xmlns:o="http://www.opengis.net/oseo/1.0">x</o:Format>')
    assert parse(xml).spec is not None


@requires_schemas
def test_the_oseo_names_refused_in_option_values_are_the_schema_globals() -> None:
    schema = etree.parse(str(SCHEMAS_DIR / "oseo" / "1.0" / "oseo.xsd")).getroot()
    declared = {e.get("name") for e in schema.iterchildren("{http://www.w3.org/2001/XMLSchema}element")}
    assert declared == OSEO_ELEMENTS


# -------------------------------------------------------------- negatives

E = ExceptionCode


@pytest.mark.parametrize(
    ("old", "new", "locator"),
    [
        ("<orderReference>ref-1</orderReference>", f"<orderReference>{'r' * 31}</orderReference>", "orderReference"),
        ("<orderRemark>please hurry</orderRemark>", f"<orderRemark>{'h' * 4001}</orderRemark>", "orderRemark"),
        ("<itemId>item-1</itemId>", f"<itemId>{'i' * 81}</itemId>", "itemId"),
        ("<userName>ftpuser</userName>", "<userName>ftpuser12</userName>", "userName"),
        ("<userPassword>ftppass</userPassword>", f"<userPassword>{'p' * 21}</userPassword>", "userPassword"),
        ("<serverAddress>ftp.client.example</serverAddress>", f"<serverAddress>{'s' * 256}</serverAddress>",
         "serverAddress"),
        ("<path>/in/box</path>", f"<path>{'/' * 1025}</path>", "path"),
        ("<collectionId>urn:c:demo</collectionId>", f"<collectionId>{'c' * 256}</collectionId>", "collectionId"),
        ("<productOrderOptionsId>PRODUCT_ORDER</productOrderOptionsId>",
         f"<productOrderOptionsId>{'o' * 41}</productOrderOptionsId>", "productOrderOptionsId"),
        ("<orderItemRemark>first</orderItemRemark>", f"<orderItemRemark>{'x' * 4001}</orderItemRemark>",
         "orderItemRemark"),
        ("<paymentMethod>quota</paymentMethod>", f"<paymentMethod>{'m' * 41}</paymentMethod>", "paymentMethod"),
        ("<orderAccount>project-9</orderAccount>", f"<orderAccount>{'a' * 21}</orderAccount>", "orderAccount"),
        ("<orderAccount>project-9</orderAccount>", f"<creditCardInfo>{'1' * 256}</creditCardInfo>",
         "creditCardInfo"),
        ("<firstName>Ana</firstName>", f"<firstName>{'a' * 41}</firstName>", "firstName"),
        ("<lastName>Payer</lastName>", f"<lastName>{'a' * 41}</lastName>", "lastName"),
        ("<companyRef>IPMA</companyRef>", f"<companyRef>{'a' * 41}</companyRef>", "companyRef"),
        ("<streetAddress>Rua C</streetAddress>", f"<streetAddress>{'a' * 41}</streetAddress>", "streetAddress"),
        ("<city>Lisboa</city>", f"<city>{'a' * 41}</city>", "city"),
        ("<state>-</state>", f"<state>{'a' * 41}</state>", "state"),
        ("<postalCode>1749-077</postalCode>", f"<postalCode>{'1' * 13}</postalCode>", "postalCode"),
        ("<country>PT</country>", f"<country>{'a' * 41}</country>", "country"),
        ("<postBox>12</postBox>", f"<postBox>{'1' * 13}</postBox>", "postBox"),
        ("<telephoneNumber>+351218447000</telephoneNumber>", f"<telephoneNumber>{'1' * 19}</telephoneNumber>",
         "telephoneNumber"),
        ("<facsimileTelephoneNumber>+351218402468</facsimileTelephoneNumber>",
         f"<facsimileTelephoneNumber>{'1' * 19}</facsimileTelephoneNumber>", "facsimileTelephoneNumber"),
        ("<productAnnotation>note</productAnnotation>", f"<productAnnotation>{'n' * 4001}</productAnnotation>",
         "productAnnotation"),
        ("<specialInstructions>none</specialInstructions>",
         f"<specialInstructions>{'n' * 4001}</specialInstructions>", "specialInstructions"),
    ],
)
def test_string_limits(old: str, new: str, locator: str) -> None:
    refused(replaced(old, new), E.InvalidParameterValue, locator, "characters long")


@pytest.mark.parametrize(
    ("old", "new", "locator"),
    [
        ("<orderReference>ref-1</orderReference>", "<orderReference/>", "orderReference"),
        ("<orderRemark>please hurry</orderRemark>", "<orderRemark> </orderRemark>", "orderRemark"),
        ("<firstName>Bill</firstName>", "<firstName></firstName>", "firstName"),
        ("<productOrderOptionsId>PRODUCT_ORDER</productOrderOptionsId>", "<productOrderOptionsId/>",
         "productOrderOptionsId"),
        ("<orderAccount>project-9</orderAccount>", "<orderAccount/>", "orderAccount"),
    ],
)
def test_empty_optional_values_with_a_minimum_length(old: str, new: str, locator: str) -> None:
    refused(replaced(old, new), E.InvalidParameterValue, locator, "empty")


@pytest.mark.parametrize(
    ("old", "new", "locator"),
    [
        ("<orderType>PRODUCT_ORDER</orderType>", "", "orderType"),
        ("<orderType>PRODUCT_ORDER</orderType>", "<orderType/>", "orderType"),
        ("<itemId>item-1</itemId>", "", "itemId"),
        ("<itemId>item-2</itemId>", "<itemId>  </itemId>", "itemId"),
        ("<statusNotification>All</statusNotification>", "", "statusNotification"),
        ("<identifier>urn:p:2</identifier>", "", "identifier"),
        ("<identifier>urn:p:2</identifier>", "<identifier/>", "identifier"),
        ("<productId><identifier>urn:p:2</identifier></productId>", "", "productId"),
        ("<protocol>sftp</protocol>", "", "protocol"),
        ("<serverAddress>sftp.client.example</serverAddress>", "", "serverAddress"),
        ("<serverAddress>sftp.client.example</serverAddress>", "<serverAddress/>", "serverAddress"),
        ("<encoding>XMLEncoding</encoding>", "", "encoding"),
        ("<values><d:rescale>true</d:rescale></values>", "", "values"),
        ("<paymentMethod>quota</paymentMethod>", "", "paymentMethod"),
        ("<packageMedium>DVD</packageMedium>", "", "packageMedium"),
        ("<city>Lisboa</city>", "", "city"),
        ("<onlineDataDelivery><protocol>ftp</protocol></onlineDataDelivery>", "", "onlineDataAccess"),
        ("<onlineDataDelivery><protocol>ftp</protocol></onlineDataDelivery>",
         "<onlineDataDelivery></onlineDataDelivery>", "protocol"),
        ("<productId><identifier>urn:p:1</identifier><collectionId>urn:c:demo</collectionId></productId>",
         "", "productId"),
    ],
)
def test_missing_elements(old: str, new: str, locator: str) -> None:
    refused(replaced(old, new), E.MissingParameterValue, locator)


def test_missing_order_items_and_specification() -> None:
    start, end = FULL.index("<orderItem>"), FULL.index("</orderSpecification>")
    refused(FULL[:start] + FULL[end:], E.MissingParameterValue, "orderItem")
    start, end = FULL.index("<orderSpecification>"), FULL.index("<statusNotification>")
    refused(FULL[:start] + FULL[end:], E.MissingParameterValue, "orderSpecification", "quotationId")


def test_empty_parameter_holder() -> None:
    start = FULL.rindex("<option>", 0, FULL.index("<d:rescale>"))
    end = FULL.index("</option>", start) + len("</option>")
    refused(FULL[:start] + "<option/>" + FULL[end:], E.MissingParameterValue, "ParameterData")


@pytest.mark.parametrize(
    ("old", "new", "locator"),
    [
        ("<orderType>PRODUCT_ORDER</orderType>", "<orderType>MASSIVE_ORDER</orderType>", "orderType"),
        ("<orderType>PRODUCT_ORDER</orderType>", "<orderType>product_order</orderType>", "orderType"),
        ("<packaging>zip</packaging>", "<packaging>zipx</packaging>", "packaging"),
        ("<priority>FAST_TRACK</priority>", "<priority>URGENT</priority>", "priority"),
        ("<statusNotification>All</statusNotification>", "<statusNotification>all</statusNotification>",
         "statusNotification"),
        ("<protocol>sftp</protocol>", "<protocol>scp</protocol>", "protocol"),
        ("<onlineDataDelivery><protocol>ftp</protocol>", "<onlineDataDelivery><protocol>FTP</protocol>", "protocol"),
        ("<packageMedium>DVD</packageMedium>", "<packageMedium>floppy</packageMedium>", "packageMedium"),
        ("<shippingInstructions>once all products are ready</shippingInstructions>",
         "<shippingInstructions>whenever</shippingInstructions>", "shippingInstructions"),
        ("<encoding>XMLEncoding</encoding>", "<encoding>JSON</encoding>", "encoding"),
        ("<numberOfCopies>1</numberOfCopies>", "<numberOfCopies>one</numberOfCopies>", "numberOfCopies"),
        ("<numberOfCopies>1</numberOfCopies>", "<numberOfCopies>99999999999</numberOfCopies>", "numberOfCopies"),
        ("<numberOfCopies>1</numberOfCopies>", f"<numberOfCopies>{'9' * 50_000}</numberOfCopies>", "numberOfCopies"),
        ("<numberOfCopies>1</numberOfCopies>", "<numberOfCopies>\u0663</numberOfCopies>", "numberOfCopies"),
        ("<timeStamp>2024-03-01T10:00:00Z</timeStamp>", "<timeStamp>2024-03-01</timeStamp>", "timeStamp"),
        ("<extension>item-ext</extension>", "<extension><x/></extension>", "extension"),
        ("<itemId>item-2</itemId>", "<itemId>item-1</itemId>", "itemId"),
        ("<orderReference>ref-1</orderReference>", "<orderReference><b>ref</b></orderReference>", "orderReference"),
    ],
)
def test_invalid_values(old: str, new: str, locator: str) -> None:
    refused(replaced(old, new), E.InvalidParameterValue, locator)


@pytest.mark.parametrize(
    ("old", "new", "locator"),
    [
        # Unknown elements in closed sequences, wherever they are.
        ("<orderRemark>", "<comment>x</comment><orderRemark>", "comment"),
        ("<itemId>item-1</itemId>", "<itemId>item-1</itemId><note/>", "note"),
        ("<statusNotification>All</statusNotification>",
         "<statusNotification>All</statusNotification><x:y xmlns:x='urn:x'/>", "y"),
        ("<postBox>12</postBox>", "<postBox>12</postBox><floor>3</floor>", "floor"),
        ("<path>/in/box</path>", "<path>/in/box</path><port>21</port>", "port"),
        ("<packageMedium>DVD</packageMedium>", "<packageMedium>DVD</packageMedium><tape/>", "tape"),
        ("<paymentMethod>quota</paymentMethod>", "<paymentMethod>quota</paymentMethod><coupon/>", "coupon"),
        ("<encoding>XMLEncoding</encoding>", "<encoding>XMLEncoding</encoding><units/>", "units"),
        ("</ParameterData></option>\n    <deliveryOptions>", "</ParameterData><more/></option>\n    <deliveryOptions>",
         "more"),
        ("<identifier>urn:p:2</identifier>", "<identifier>urn:p:2</identifier><version>2</version>", "version"),
        # Known elements out of their place, or repeated.
        ("<orderType>PRODUCT_ORDER</orderType>", "<orderType>PRODUCT_ORDER</orderType><priority>STANDARD</priority>",
         "priority"),
        ("<packaging>zip</packaging>", "<packaging>zip</packaging><packaging>tar</packaging>", "packaging"),
        ("<orderAccount>project-9</orderAccount>",
         "<orderAccount>project-9</orderAccount><creditCardInfo>1</creditCardInfo>", "creditCardInfo"),
        ("<productId><identifier>urn:p:2</identifier></productId>",
         "<productId><identifier>urn:p:2</identifier></productId><subscriptionId><collectionId>c</collectionId>"
         "</subscriptionId>", "subscriptionId"),
        ("<onlineDataDelivery><protocol>ftp</protocol></onlineDataDelivery>",
         "<onlineDataDelivery><protocol>ftp</protocol></onlineDataDelivery><onlineDataAccess><protocol>ftp</protocol>"
         "</onlineDataAccess>", "onlineDataAccess"),
        # An element of another namespace in place of an OSEO one.
        ("<orderType>PRODUCT_ORDER</orderType>", "<d:orderType>PRODUCT_ORDER</d:orderType>", "orderType"),
    ],
)
def test_unexpected_elements(old: str, new: str, locator: str) -> None:
    refused(replaced(old, new), E.InvalidParameterValue, locator)


def test_duplicate_item_ids_are_named() -> None:
    refused(replaced("<itemId>item-2</itemId>", "<itemId>item-1</itemId>"), E.InvalidParameterValue, "itemId",
            '"item-1"')


@pytest.mark.parametrize(
    ("order_type", "locator"),
    [("SUBSCRIPTION_ORDER", "productId"), ("TASKING_ORDER", "productId")],
)
def test_items_must_match_the_order_type(order_type: str, locator: str) -> None:
    refused(replaced("<orderType>PRODUCT_ORDER</orderType>", f"<orderType>{order_type}</orderType>"),
            E.InvalidParameterValue, locator, order_type)


@pytest.mark.parametrize(
    ("attributes", "code", "locator"),
    [
        ('version="1.0.0"', E.MissingParameterValue, "service"),
        ('service="" version="1.0.0"', E.MissingParameterValue, "service"),
        ('service="SPS" version="1.0.0"', E.InvalidParameterValue, "service"),
        ('service="OS"', E.MissingParameterValue, "version"),
        ('service="OS" version="1.0"', E.InvalidParameterValue, "version"),
    ],
)
def test_request_base(attributes: str, code: ExceptionCode, locator: str) -> None:
    refused(replaced('service="OS" version="1.0.0"', attributes), code, locator)


def test_not_a_submit() -> None:
    error = error_of(parse_submit, etree.fromstring(f'<Cancel xmlns="{OSEO}" service="OS" version="1.0.0"/>'))
    assert error.code is E.OperationNotSupported


# ----------------------------------------------------------------- SubmitAck


@requires_schemas
def test_submit_ack() -> None:
    ack = render_submit_ack("urn:oseod:order:42", "ref-1")
    assert_valid(ack)
    assert_valid(wrap(Encoding.SOAP12, ack))
    assert_valid(wrap(Encoding.SOAP11, ack))
    assert [etree.QName(c).localname for c in ack] == ["status", "orderId", "orderReference"]
    assert ack.findtext(f"{{{OSEO}}}status") == "success"
    assert ack.findtext(f"{{{OSEO}}}orderId") == "urn:oseod:order:42"
    bare = render_submit_ack("42", None)
    assert_valid(bare)
    assert [etree.QName(c).localname for c in bare] == ["status", "orderId"]


_ITEM = ('<orderItem xmlns="http://www.opengis.net/oseo/1.0" xmlns:x="urn:x">{}</orderItem>')
_ID = "<itemId> i1 </itemId>"
_PRODUCT = "<productId><identifier>p1</identifier><collectionId>c1</collectionId></productId>"


_PLAIN = [
    _ID + _PRODUCT,
    _ID + "<productId><identifier>p1</identifier></productId>",
    f"\n  {_ID}\n  {_PRODUCT}\n",
    _ID + "<productId>\n<identifier> p1 </identifier>\n<collectionId> c1 </collectionId>\n</productId>",
    f"<itemId>{'i' * 80}</itemId>" + _PRODUCT,
    _ID + f"<productId><identifier>p</identifier><collectionId>{'c' * 255}</collectionId></productId>",
]
# What only the general path reads, or refuses (saying why).
_OTHER = [
    f"<itemId>{'i' * 81}</itemId>" + _PRODUCT,
    _ID + f"<productId><identifier>p</identifier><collectionId>{'c' * 256}</collectionId></productId>",
    "<itemId> </itemId>" + _PRODUCT,
    _ID + "<productId><identifier></identifier></productId>",
    _ID + "<productId><identifier>p</identifier><collectionId/></productId>",
    _ID + "<productId><collectionId>c1</collectionId><identifier>p</identifier></productId>",
    _ID + "<productId><identifier>p</identifier><collectionId>c</collectionId><identifier>q</identifier></productId>",
    _ID + "<productId><identifier>p<x:b/></identifier></productId>",
    _ID + "<productId>text<identifier>p</identifier></productId>",
    _ID + "<productId><identifier>p</identifier>tail</productId>",
    _ID + "<productId><identifier>p</identifier><x:identifier>q</x:identifier></productId>",
    _PRODUCT + _ID,
    "text" + _ID + _PRODUCT,
    _ID + _PRODUCT + "tail",
    _ID + "<orderItemRemark>r</orderItemRemark>" + _PRODUCT,
    _ID + "<subscriptionId><collectionId>c1</collectionId></subscriptionId>",
    _ID + _PRODUCT + _PRODUCT,
    _ID,
]


@pytest.mark.parametrize(("content", "plain"), [(c, True) for c in _PLAIN] + [(c, False) for c in _OTHER])
def test_the_plain_item_path_reads_exactly_what_the_general_one_does(content: str, plain: bool) -> None:
    from oseod.oseo import submit

    element = etree.fromstring(_ITEM.format(content))
    fast = submit._plain_product_item(element)  # noqa: SLF001
    try:
        general: ItemSpec | OseoError = submit._item(element, OrderType.PRODUCT_ORDER)  # noqa: SLF001
    except OseoError as e:
        general = e
    assert (fast is not None) == plain
    if plain:
        assert fast == general
