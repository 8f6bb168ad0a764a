"""The OData list options, read and evaluated (oseod.odata.query): every
operator, function and literal form, the hints given to the indexes, and
every refusal (a 400 naming the option, one line)."""

from __future__ import annotations

from typing import Any

import pytest

from oseod.model.orders import OrderStatus
from oseod.odata import edm
from oseod.odata.errors import ODataError
from oseod.odata.ids import order_uuid
from oseod.odata.query import (
    And,
    Const,
    Func,
    Hints,
    ListQuery,
    Or,
    SortKey,
    evaluate,
    parse_filter,
    parse_list_query,
)
from oseod.odata.values import iso_time, parse_time

E = edm.PRODUCTION_ORDER
T0 = parse_time("2026-03-01T00:00:00Z")
ID1, ID2 = "k3m4n5p6q7r8s9", "b2c3d4e5f6g7h8"
ROWS: list[dict[str, Any]] = [
    {"Id": order_uuid(ID1), "Name": "night run", "Status": "completed", "Priority": 50,
     "SubmissionDate": iso_time(T0), "CompletedDate": iso_time(T0 + 3600), "WorkflowName": "urn:oseod:demo",
     "StatusMessage": "Completed: done", "EstimatedDate": None},
    {"Id": order_uuid(ID2), "Name": "Day run", "Status": "queued", "Priority": 90,
     "SubmissionDate": iso_time(T0 + 86400), "CompletedDate": None, "WorkflowName": "urn:oseod:other",
     "StatusMessage": "Accepted: Waiting for processing", "EstimatedDate": None},
    {"Id": order_uuid("7"), "Name": None, "Status": "failed", "Priority": 10,
     "SubmissionDate": iso_time(T0 + 2 * 86400), "CompletedDate": None, "WorkflowName": "urn:oseod:demo",
     "StatusMessage": "Failed: no product", "EstimatedDate": None},
]


def query(text: str, entity: edm.EntityType = E) -> ListQuery:
    return parse_list_query({"$filter": text}, entity, page_size=100)


def names(text: str) -> list[str | None]:
    """The Names of the rows the filter selects (None: the unnamed row)."""
    q = query(text)
    return [r["Name"] for r in ROWS if q.matches(r)]


def refused(args: dict[str, str], target: str = "$filter", entity: edm.EntityType = E) -> ODataError:
    with pytest.raises(ODataError) as info:
        parse_list_query(args, entity, page_size=100)
    error = info.value
    assert error.http_status == 400
    assert error.target == target
    assert error.message and "\n" not in error.message and "Traceback" not in error.message
    return error


@pytest.mark.parametrize(("text", "expected"), [
    ("Status eq 'completed'", ["night run"]),
    ("Status eq OData.CSC.JobStatus'completed'", ["night run"]),
    ("Status eq JobStatus'queued'", ["Day run"]),
    ("Status ne 'completed'", ["Day run", None]),
    ("Priority gt 50", ["Day run"]),
    ("Priority ge 50", ["night run", "Day run"]),
    ("Priority lt 50", [None]),
    ("Priority le 50", ["night run", None]),
    ("Priority eq 50.0", ["night run"]),
    ("50 lt Priority", ["Day run"]),  # a literal on the left
    ("Priority eq -5", []),
    ("Status in ('queued','failed')", ["Day run", None]),
    ("Status in ('queued')", ["Day run"]),  # one value (a grammar corner)
    ("Status in (OData.CSC.JobStatus'queued')", ["Day run"]),
    ("Status in (OData.CSC.JobStatus'queued', JobStatus'failed')", ["Day run", None]),
    ("Priority in (10)", [None]),
    ("Priority in (10, 90)", ["Day run", None]),
    ("Status eq 'completed' or Priority eq 10", ["night run", None]),
    ("Status eq 'completed' and Priority eq 10", []),
    ("not (Status eq 'completed')", ["Day run", None]),
    ("contains(Name,'run')", ["night run", "Day run"]),
    ("contains(Name,'Run')", []),  # case matters
    ("startswith(Name,'Day')", ["Day run"]),
    ("endswith(Name,'run')", ["night run", "Day run"]),
    ("contains(Name,'night') eq true", ["night run"]),
    ("contains(Name,'night') eq false", ["Day run"]),  # (null Name: unknown, not false)
    ("contains(Name,'night') ne true", ["Day run"]),
    ("not contains(Name,'night')", ["Day run"]),
    ("Name eq null", [None]),
    ("Name ne null", ["night run", "Day run"]),
    ("Name eq 'it''s'", []),
    ("Name gt 'a'", ["night run"]),  # (text order: 'D' < 'a' < 'n')
    ("CompletedDate ge 2026-03-01T00:00:00Z", ["night run"]),
    ("CompletedDate lt 2026-03-01T00:00:00Z", []),  # (null: unknown)
    ("not (CompletedDate lt 2026-03-01T00:00:00Z)", ["night run"]),
    ("SubmissionDate gt 2026-03-01T00:00:00Z", ["Day run", None]),
    ("SubmissionDate ge 2026-03-01T00:00:00.000Z", ["night run", "Day run", None]),
    ("SubmissionDate lt 2026-03-01T01:00:00+01:00", []),  # an offset: 00:00 UTC
    ("SubmissionDate le 2026-03-01T01:00:00+01:00", ["night run"]),
    ("SubmissionDate ge 2026-03-02", ["Day run", None]),  # a date: its midnight UTC
    ("SubmissionDate eq '2026-03-01T00:00:00Z'", ["night run"]),  # a date in a string
    (f"Id eq {order_uuid(ID1)}", ["night run"]),
    (f"Id eq '{order_uuid(ID1).upper()}'", ["night run"]),
    (f"Id eq '{ID2}'", ["Day run"]),  # the OSEO orderId names the same order
    (f"Id in ({order_uuid('7')}, '{ID1}')", ["night run", None]),
    ("WorkflowName eq 'urn:oseod:demo' and Priority ne 10", ["night run"]),
    ("true", ["night run", "Day run", None]),
    ("false", []),
    ("StatusMessage eq 'OData.CSC.JobStatus'", []),  # the type's name inside a string is text
])
def test_filter_selects(text: str, expected: list[str | None]) -> None:
    assert names(text) == expected


def test_null_logic_is_three_valued() -> None:
    row = {"Name": None, "Priority": 5}
    unknown_or_true = query("contains(Name,'x') or Priority eq 5")
    unknown_and_true = query("contains(Name,'x') and Priority eq 5")
    unknown_and_false = query("not (contains(Name,'x') and Priority eq 6)")
    assert unknown_or_true.matches(row)
    assert not unknown_and_true.matches(row)
    assert unknown_and_false.matches(row)  # unknown and false = false; not false = true


@pytest.mark.parametrize(("text", "words"), [
    ("Nope eq 1", "no property 'Nope'"),
    ("InputProductReference eq 'x'", "cannot be filtered on"),
    ("NotificationEpPassword eq 'x'", "cannot be filtered on"),
    ("Status eq 'done'", "queued, in_progress"),
    ("Status eq 3", "queued, in_progress"),
    ("Status gt 'queued'", "eq, ne and in only"),
    ("Status eq Foo.Bar'x'", "unknown type 'Foo.Bar'"),
    ("Priority eq 'high'", "takes a number"),
    ("Priority eq 99999999999999999999", "takes a number"),
    ("Name eq 5", "takes a string"),
    ("Id eq 'not-an-id'", "takes a UUID"),
    ("SubmissionDate gt 'yesterday'", "takes a date and time"),
    ("SubmissionDate gt 5", "takes a date and time"),
    ("tolower(Name) eq 'a'", "unsupported function tolower"),
    ("length(Name) gt 3", "unsupported function length"),
    ("indexof(Name,'a') eq 1", "unsupported function indexof"),
    ("substringof('a',Name)", "unsupported function substringof"),
    ("contains(Name,'a') eq 'yes'", "compared with true or false only"),
    ("contains(Priority,'1')", "takes a text property"),
    ("contains(Name,Name)", "takes a string as its second argument"),
    ("contains('a','b')", "is not a property"),
    ("Priority add 1 eq 5", "arithmetic"),
    ("Priority eq Priority", "with a value only"),
    ("a/b eq 1", "a path"),
    ("not Status eq 'completed'", "not binds first"),
    ("Priority", "is not a condition"),
    ("'x'", "is not a condition"),
    ("Status in 'queued'", "cannot be read"),
    ("Name eq 'open", "not closed"),
    ("Name eq", "cannot be read"),
    ("Name eq 'a' and", "cannot be read"),
    ("foo(Name)", "unsupported function foo"),
    ("Name eq 'a' $ 1", "cannot be read"),
    ("", "empty"),
    ("   ", "empty"),
    ("Priority eq 1 or " * 400 + "Priority eq 2", "longer than"),
])
def test_filter_refusals(text: str, words: str) -> None:
    error = refused({"$filter": text})
    assert words in error.message, error.message
    assert error.code == "InvalidParameterValue"


def test_a_property_of_another_entity_is_unknown_here() -> None:
    refused({"$filter": "OrderOutputSize eq 0"}, entity=edm.ORDER)
    assert query("OrderOutputSize eq 0").filter is not None
    assert query("OrderSize eq 0", edm.ORDER).filter is not None


def test_too_many_values_in_a_list() -> None:
    assert "at most" in refused({"$filter": "Priority in (" + ",".join(["1"] * 201) + ")"}).message


def test_deep_filters() -> None:
    assert parse_filter("(" * 1000 + "Priority eq 1" + ")" * 1000, E) is not None  # (brackets add no depth)
    assert query(" or ".join(f"Priority eq {n}" for n in range(200))).matches({"Priority": 199})
    assert "nested more than" in refused({"$filter": "not " * 300 + "true"}).message


# --- hints --------------------------------------------------------------------------

S = OrderStatus
QUEUED = frozenset({S.Submitted, S.Accepted})
COMPLETED = frozenset({S.Completed, S.Downloaded, S.Terminated})


@pytest.mark.parametrize(("text", "hints"), [
    ("Status eq 'queued'", Hints(QUEUED)),
    ("Status eq OData.CSC.JobStatus'completed'", Hints(COMPLETED)),
    ("Status in ('queued','completed')", Hints(QUEUED | COMPLETED)),
    ("Status eq 'queued' or Status eq 'completed'", Hints(QUEUED | COMPLETED)),
    ("Status ne 'failed' and Status ne 'cancelled' and Status ne 'in_progress'", Hints(QUEUED | COMPLETED)),
    ("not (Status ne 'queued')", Hints(QUEUED)),
    ("Status eq 'queued' and Status eq 'completed'", Hints(frozenset())),
    ("false", Hints(frozenset(), index_only=False)),
    ("Status eq 'queued' and Priority gt 5", Hints(QUEUED, index_only=False)),
    ("Status eq 'queued' or Priority gt 5", Hints(None, index_only=False)),
    ("(Status eq 'queued' and Priority gt 5) or Status eq 'failed'",
     Hints(QUEUED | {S.Failed}, index_only=False)),
    ("not (Status eq 'queued' and Priority gt 5)", Hints(None, index_only=False)),
    ("SubmissionDate ge 2026-03-01T00:00:00Z", Hints(None, T0 - 0.001, index_only=False)),
    ("SubmissionDate gt 2026-03-01T00:00:00Z and CompletedDate ge 2026-03-02T00:00:00Z",
     Hints(None, T0 + 86400 - 0.001, index_only=False)),
    ("SubmissionDate ge 2026-03-01T00:00:00Z or CompletedDate eq 2026-03-02T00:00:00Z",
     Hints(None, T0 - 0.001, index_only=False)),
    ("SubmissionDate ge 2026-03-01T00:00:00Z or Priority eq 1", Hints(None, None, index_only=False)),
    ("SubmissionDate lt 2026-03-01T00:00:00Z", Hints(None, None, index_only=False)),
    ("EvictionDate ge 2026-03-01T00:00:00Z", Hints(None, None, index_only=False)),
    (f"Id eq {order_uuid(ID1)}", Hints(None, None, (ID1,), index_only=False)),
    (f"Id eq {order_uuid(ID1)} or Id eq '{ID2}'", Hints(None, None, tuple(sorted((ID1, ID2))), index_only=False)),
    (f"Id in ({order_uuid(ID1)}, 00000000-0000-4000-8000-000000000000)",  # (a UUID not ours: nothing)
     Hints(None, None, (ID1,), index_only=False)),
    (f"Id eq {order_uuid(ID1)} or Priority eq 1", Hints(None, None, None, index_only=False)),
])
def test_hints(text: str, hints: Hints) -> None:
    assert query(text).hints == hints


def test_no_filter_is_index_only() -> None:
    q = parse_list_query({}, E, page_size=7)
    assert q.hints == Hints() and q.filter is None and q.page_size == 7
    assert all(q.matches(r) for r in ROWS)


# --- the other options --------------------------------------------------------------


def test_options_read() -> None:
    q = parse_list_query({"$orderby": "SubmissionDate desc,Priority asc, Name", "$top": "5", "$skip": "2",
                          "$count": "true", "$select": "Id,Status,Id", "$skiptoken": "abc", "$format": "json",
                          "custom": "left to the caller"}, E, page_size=10)
    assert q.orderby == (SortKey("SubmissionDate", True), SortKey("Priority"), SortKey("Name"))
    assert (q.top, q.skip, q.count, q.select, q.skiptoken) == (5, 2, True, ("Id", "Status"), "abc")
    assert parse_list_query({"$select": "*", "$count": "false"}, E, page_size=10).select is None
    # $select takes any declared property (not only the queryable ones)
    assert parse_list_query({"$select": "WorkflowOptions"}, E, page_size=10).select == ("WorkflowOptions",)


@pytest.mark.parametrize(("args", "target", "words"), [
    ({"$orderby": "Nope"}, "$orderby", "cannot be ordered by 'Nope'"),
    ({"$orderby": "InputProductReference"}, "$orderby", "cannot be ordered by"),
    ({"$orderby": "Priority sideways"}, "$orderby", "asc or desc"),
    ({"$orderby": "Priority,"}, "$orderby", "asc or desc"),
    ({"$orderby": ",".join(["Priority"] * 9)}, "$orderby", "at most 8"),
    ({"$top": "-1"}, "$top", "whole number"),
    ({"$top": "ten"}, "$top", "whole number"),
    ({"$top": "9" * 13}, "$top", "whole number"),
    ({"$skip": "1.5"}, "$skip", "whole number"),
    ({"$count": "yes"}, "$count", "true or false"),
    ({"$select": "Id,Nope"}, "$select", "no property 'Nope'"),
    ({"$select": "Product"}, "$select", "no property 'Product'"),
    ({"$skiptoken": ""}, "$skiptoken", "empty"),
    ({"$expand": "Product"}, "$expand", "not supported"),
    ({"$search": "x"}, "$search", "unsupported query option"),
    ({"$apply": "x"}, "$apply", "unsupported query option"),
    ({"$format": "xml"}, "$format", "json"),
])
def test_option_refusals(args: dict[str, str], target: str, words: str) -> None:
    assert words in refused(args, target).message


def test_fingerprint_names_filter_and_order() -> None:
    a = parse_list_query({"$filter": "Priority gt 1", "$top": "1"}, E, page_size=10)
    b = parse_list_query({"$filter": "Priority gt 1", "$top": "9"}, E, page_size=10)
    c = parse_list_query({"$filter": "Priority gt 2"}, E, page_size=10)
    d = parse_list_query({"$filter": "Priority gt 1", "$orderby": "Name"}, E, page_size=10)
    e = parse_list_query({"$filter": "Priority gt 1"}, edm.ORDER, page_size=10)
    assert a.fingerprint == b.fingerprint
    assert len({a.fingerprint, c.fingerprint, d.fingerprint, e.fingerprint}) == 4


# (a name the row lacks: contains() of it is unknown)
_UNKNOWN = Func("Missing", "contains", "x")


@pytest.mark.parametrize(("left", "right", "conjunction", "disjunction"), [
    (Const(True), Const(True), True, True),
    (Const(True), Const(False), False, True),
    (Const(False), Const(False), False, False),
    (Const(True), _UNKNOWN, None, True),
    (Const(False), _UNKNOWN, False, None),
    (_UNKNOWN, Const(False), False, None),
    (_UNKNOWN, Const(True), None, True),
    (_UNKNOWN, _UNKNOWN, None, None),
])
def test_and_and_or_follow_three_valued_logic(left: Any, right: Any, conjunction: bool | None,
                                              disjunction: bool | None) -> None:
    assert evaluate(And(left, right), {}) is conjunction
    assert evaluate(Or(left, right), {}) is disjunction
