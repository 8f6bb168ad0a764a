"""The query options of an OData list (``$filter``, ``$orderby``, ``$top``,
``$skip``, ``$count``, ``$select``, ``$skiptoken``), checked against the
model (:mod:`.edm`) and turned into a :class:`ListQuery`: a predicate over
the rendered JSON rows, a sort, and the hints that let the store's indexes
narrow the scan (:mod:`.search` runs it).

``$filter`` is read by odata-query's lexer and parser (a maintained
grammar, not ours); its AST is then checked and folded into the small tree
below, which both evaluates rows and yields the hints. Only the properties
edm marks ``queryable`` may be named. Anything else is an ODataError 400
whose ``target`` is the option and whose message is one line.

Evaluation follows OData's null rules: a comparison with a null operand is
unknown (None), except ``eq``/``ne`` null; ``and``/``or``/``not`` are
three-valued, and a row matches only when the filter is true."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from typing import Any, Union

import attrs
from odata_query import ast
from odata_query.exceptions import ODataException, UnknownFunctionException
from odata_query.grammar import ODataLexer, ODataParser

from ..model.orders import OrderStatus
from . import edm
from .errors import ODataError, bad_request
from .ids import order_id_of, order_uuid
from .values import iso_time, oseo_statuses, parse_time

MAX_FILTER = 4096  # characters of $filter read at most
MAX_IN = 200  # values of one ``in`` list
MAX_DEPTH = 250  # conditions within conditions (a chain of 250 ``or`` is that deep)
OPTIONS = ("$filter", "$orderby", "$top", "$skip", "$count", "$select", "$skiptoken", "$format")

_COMPARATORS = {ast.Eq: "eq", ast.NotEq: "ne", ast.Gt: "gt", ast.GtE: "ge", ast.Lt: "lt", ast.LtE: "le"}
_FLIPPED = {"eq": "eq", "ne": "ne", "gt": "lt", "ge": "le", "lt": "gt", "le": "ge"}
_ORDERED_TYPES = (edm.STRING, edm.INT64, edm.DATE_TIME)
_STRING_FUNCTIONS = ("contains", "startswith", "endswith")
# Dates whose lower bound is one on the order's last update (the score of
# its indexes): an order is changed when it is made and when it completes.
_UPDATE_BOUNDS = ("SubmissionDate", "CompletedDate")


# --- the checked filter -------------------------------------------------------------


@attrs.frozen
class Cmp:
    name: str
    op: str  # eq ne gt ge lt le
    value: Any  # as rows hold it: str, int, float, bool or None


@attrs.frozen
class InSet:
    name: str
    values: frozenset[Any]


@attrs.frozen
class Func:
    name: str
    function: str  # contains startswith endswith
    text: str


@attrs.frozen
class And:
    left: Node
    right: Node


@attrs.frozen
class Or:
    left: Node
    right: Node


@attrs.frozen
class Not:
    operand: Node


@attrs.frozen
class Const:
    value: bool


Node = Union[Cmp, InSet, Func, And, Or, Not, Const]


def evaluate(node: Node, row: Mapping[str, Any]) -> bool | None:
    """``node`` over ``row``: True, False or None (unknown)."""
    if isinstance(node, Cmp):
        return _compare(node.op, row.get(node.name), node.value)
    if isinstance(node, InSet):
        value = row.get(node.name)
        return None if value is None else value in node.values
    if isinstance(node, Func):
        text = row.get(node.name)
        if not isinstance(text, str):
            return None
        if node.function == "contains":
            return node.text in text
        if node.function == "startswith":
            return text.startswith(node.text)
        return text.endswith(node.text)
    if isinstance(node, (And, Or)):
        # Three-valued: the value that decides (false for and, true for or)
        # decides whichever side has it, even beside an unknown (None).
        deciding = isinstance(node, Or)
        left = evaluate(node.left, row)
        if left is deciding:
            return deciding
        right = evaluate(node.right, row)
        if right is deciding:
            return deciding
        return None if left is None or right is None else not deciding
    if isinstance(node, Not):
        operand = evaluate(node.operand, row)
        return None if operand is None else not operand
    return node.value


def _compare(op: str, value: Any, literal: Any) -> bool | None:
    if op == "eq":
        return value == literal
    if op == "ne":
        return value != literal
    if value is None or literal is None:
        return None
    try:
        if op == "gt":
            return bool(value > literal)
        if op == "ge":
            return bool(value >= literal)
        if op == "lt":
            return bool(value < literal)
        return bool(value <= literal)
    except TypeError:  # (a row value of another type than declared: no match)
        return None


# --- reading $filter ----------------------------------------------------------------


def _filter_error(message: str) -> ODataError:
    return bad_request("$filter", message)


# An enum literal written with its type, OData.CSC.JobStatus'completed':
# odata-query's grammar has no such literal, so the type is dropped (after
# checking it is ours) before it reads the text. Applied outside strings only.
_TYPED_LITERAL = re.compile(r"([A-Za-z_][\w.]*)$")
# ``x in ('a')``: a one-value list, which the grammar reads as a parenthesised
# value; written as ('a','a') (the same set) before it reads the text.
_IN_OPEN = re.compile(r"\bin\s*\(\s*$", re.IGNORECASE)
_IN_ONE = re.compile(r"(\bin\s*\()\s*([^,()'\s]+)\s*\)", re.IGNORECASE)
_JOB_STATUS_NAMES = (edm.JOB_STATUS, edm.JOB_STATUS_TYPE.name)


def _split_strings(text: str) -> list[str]:
    """``text`` as alternating parts: outside strings, a string literal
    (quotes included), outside, ... ValueError for an unterminated string."""
    parts, start, i, n = [], 0, 0, len(text)
    while i < n:
        if text[i] != "'":
            i += 1
            continue
        parts.append(text[start:i])
        j = i + 1
        while True:
            if j >= n:
                raise ValueError("a string literal is not closed")
            if text[j] == "'":
                if j + 1 < n and text[j + 1] == "'":
                    j += 2
                    continue
                break
            j += 1
        parts.append(text[i:j + 1])
        start = i = j + 1
    parts.append(text[start:])
    return parts


def _prepare(text: str) -> str:
    """The filter as odata-query's grammar reads it (see above)."""
    parts = _split_strings(text)
    for k in range(0, len(parts), 2):
        part = parts[k]
        if k + 1 < len(parts):
            typed = _TYPED_LITERAL.search(part)
            if typed and typed.group(1) not in ("eq", "ne", "gt", "ge", "lt", "le", "in", "and", "or", "not"):
                name = typed.group(1)
                if name not in _JOB_STATUS_NAMES and "." in name:
                    raise _filter_error(f"unknown type {name!r}: the only enumeration is {edm.JOB_STATUS}")
                if name in _JOB_STATUS_NAMES:
                    part = part[:typed.start()]
            if _IN_OPEN.search(part) and k + 2 < len(parts) and re.match(r"\s*\)", parts[k + 2]):
                parts[k + 1] = f"{parts[k + 1]},{parts[k + 1]}"
        parts[k] = _IN_ONE.sub(r"\1\2,\2)", part)
    return "".join(parts)


def parse_filter(text: str, entity: edm.EntityType) -> Node:
    """``$filter`` over ``entity``'s queryable properties, checked."""
    if len(text) > MAX_FILTER:
        raise _filter_error(f"longer than {MAX_FILTER} characters")
    if not text.strip():
        raise _filter_error("empty")
    try:
        tree = ODataParser().parse(ODataLexer().tokenize(_prepare(text)))
    except ODataError:
        raise
    except ValueError as e:  # (our string splitting)
        raise _filter_error(str(e)) from None
    except UnknownFunctionException as e:
        raise _unsupported(str(getattr(e, "function_name", "")) or "?") from None
    except ODataException as e:
        raise _filter_error(f"cannot be read: {_one_line(str(e))}") from None
    except RecursionError:
        raise _filter_error("nested too deeply") from None
    if tree is None:
        raise _filter_error("empty")
    return _Checker(entity).boolean(tree)


def _unsupported(function: str) -> ODataError:
    return _filter_error(f"unsupported function {function[:40]}: only {', '.join(_STRING_FUNCTIONS)} are")


def _one_line(text: str) -> str:
    return " ".join(text.split())[:200]


class _Checker:
    """odata-query's AST -> the tree above, refusing what oseod cannot answer."""

    def __init__(self, entity: edm.EntityType) -> None:
        self.entity = entity

    def boolean(self, node: Any, depth: int = 0) -> Node:
        if depth > MAX_DEPTH:  # (every walk of the tree recurses: kept well within Python's stack)
            raise _filter_error(f"nested more than {MAX_DEPTH} deep")
        if isinstance(node, ast.BoolOp):
            left, right = self.boolean(node.left, depth + 1), self.boolean(node.right, depth + 1)
            return And(left, right) if isinstance(node.op, ast.And) else Or(left, right)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            return Not(self.boolean(node.operand, depth + 1))
        if isinstance(node, ast.Compare):
            return self.compare(node)
        if isinstance(node, ast.Call):
            return self.call(node)
        if isinstance(node, ast.Boolean):
            return Const(node.py_val)
        raise _filter_error(f"{_describe(node)} is not a condition (true or false)")

    def prop(self, node: Any) -> edm.Property:
        if isinstance(node, ast.Identifier) and not node.namespace:
            prop = self.entity.field(node.name)
            if prop is None:
                raise _filter_error(f"{self.entity.name} has no property {node.name!r}")
            if not prop.queryable:
                raise _filter_error(f"{node.name} cannot be filtered on")
            return prop
        raise _filter_error(f"{_describe(node)} is not a property of {self.entity.name}")

    def compare(self, node: ast.Compare) -> Node:
        if isinstance(node.comparator, ast.In):
            prop = self.prop(node.left)
            if prop.type == edm.BOOLEAN:
                raise _filter_error(f"{prop.name} cannot take in")
            items = node.right.val if isinstance(node.right, ast.List) else None
            if items is None:
                raise _filter_error(f"in takes a list of values: {prop.name} in ('a','b')")
            if len(items) > MAX_IN:
                raise _filter_error(f"in takes at most {MAX_IN} values")
            return InSet(prop.name, frozenset(literal(prop, v) for v in items))
        op = _COMPARATORS.get(type(node.comparator))
        if op is None:  # (every comparator is in the table: kept for a newer odata-query)
            raise _filter_error(f"unsupported comparison {type(node.comparator).__name__}")
        left, right = node.left, node.right
        if isinstance(left, ast.Call) and isinstance(right, ast.Boolean):
            found = self.call(left)
            wanted = right.py_val if op == "eq" else not right.py_val if op == "ne" else None
            if wanted is None:
                raise _filter_error(f"{left.func.name}(...) is compared with eq or ne only")
            return found if wanted else Not(found)
        if isinstance(left, ast.Call) or isinstance(right, ast.Call):
            call = left if isinstance(left, ast.Call) else right
            assert isinstance(call, ast.Call)
            self.call(call)  # (refuses the functions not supported)
            raise _filter_error(f"{call.func.name}(...) is compared with true or false only")
        if isinstance(left, ast._Literal) and isinstance(right, ast.Identifier):
            left, right, op = right, left, _FLIPPED[op]
        prop = self.prop(left)
        if isinstance(right, ast.Identifier):
            raise _filter_error(f"{prop.name} is compared with a value only, not with {right.full_name()}")
        value = literal(prop, right)
        if op not in ("eq", "ne") and prop.type not in _ORDERED_TYPES:
            raise _filter_error(f"{prop.name} takes eq, ne and in only")
        return Cmp(prop.name, op, value)

    def call(self, node: ast.Call) -> Node:
        name = node.func.name
        if node.func.namespace or name not in _STRING_FUNCTIONS:
            raise _unsupported(node.func.full_name())
        if len(node.args) != 2:
            raise _filter_error(f"{name} takes two arguments: {name}(Name,'text')")
        prop = self.prop(node.args[0])
        if prop.type != edm.STRING:
            raise _filter_error(f"{name} takes a text property; {prop.name} is not one")
        text = node.args[1]
        if not isinstance(text, ast.String):
            raise _filter_error(f"{name} takes a string as its second argument: {name}({prop.name},'text')")
        return Func(prop.name, name, text.val)


def _describe(node: Any) -> str:
    if isinstance(node, ast.Identifier):
        return node.full_name()
    if isinstance(node, ast._Literal):
        return f"the value {getattr(node, 'val', 'null')!r}"
    if isinstance(node, ast.BinOp):
        return "arithmetic (add, sub, mul, div, mod: not supported)"
    if isinstance(node, ast.Attribute):
        return "a path (a/b: not supported)"
    if isinstance(node, ast.UnaryOp):
        return "not or - before a value (not binds first: write not (A eq B))"
    return type(node).__name__


def literal(prop: edm.Property, node: Any) -> Any:
    """The literal ``node`` as ``prop``'s values are in a row; 400 when it is
    not one of its type."""
    if isinstance(node, ast.Null):
        return None
    kind, name = prop.type, prop.name
    text = node.val if isinstance(node, (ast.String, ast.GUID, ast.DateTime, ast.Date)) else None
    if kind == edm.STRING:
        if isinstance(node, ast.String):
            return node.val
        raise _filter_error(f"{name} takes a string: '...'")
    if kind == edm.GUID:
        if isinstance(node, (ast.String, ast.GUID)) and text is not None:
            if name == "Id":
                order_id = order_id_of(text)
                if order_id is not None:
                    return order_uuid(order_id)
            try:
                return str(uuid.UUID(text.strip()))
            except ValueError:
                pass
        raise _filter_error(f"{name} takes a UUID")
    if kind == edm.JOB_STATUS:
        if isinstance(node, ast.String) and node.val in edm.JOB_STATUSES:
            return node.val
        raise _filter_error(f"{name} takes one of {', '.join(edm.JOB_STATUSES)}")
    if kind == edm.INT64:
        if isinstance(node, ast.Integer):
            value = int(node.val)
            if abs(value) < 1 << 63:
                return value
        elif isinstance(node, ast.Float):
            return float(node.val)
        raise _filter_error(f"{name} takes a number")
    if kind == edm.DATE_TIME:
        if isinstance(node, ast.Date) and text is not None:
            text += "T00:00:00Z"
        if isinstance(node, (ast.DateTime, ast.Date, ast.String)) and text is not None:
            try:
                return iso_time(parse_time(text))
            except (ValueError, OverflowError, OSError):
                pass
        raise _filter_error(f"{name} takes a date and time: 2026-01-31T12:00:00.000Z")
    if kind == edm.BOOLEAN and isinstance(node, ast.Boolean):
        return node.py_val
    raise _filter_error(f"{name} cannot be compared with {_describe(node)}")


# --- what the indexes can do for a filter -------------------------------------------

_ALL = frozenset(edm.JOB_STATUSES)


def _exact_statuses(node: Node) -> frozenset[str] | None:
    """The JobStatuses of the rows ``node`` is true of, when it speaks of
    Status only (None: it does not). Status is never null."""
    if isinstance(node, Cmp) and node.name == "Status":
        if node.op == "eq":
            return frozenset({node.value}) if node.value is not None else frozenset()
        if node.op == "ne":
            return _ALL - {node.value}
        return None
    if isinstance(node, InSet) and node.name == "Status":
        return frozenset(node.values)
    if isinstance(node, (And, Or)):
        left, right = _exact_statuses(node.left), _exact_statuses(node.right)
        if left is None or right is None:
            return None
        return left & right if isinstance(node, And) else left | right
    if isinstance(node, Not):
        inner = _exact_statuses(node.operand)
        return None if inner is None else _ALL - inner
    return None


def _necessary_statuses(node: Node) -> frozenset[str] | None:
    """JobStatuses outside which ``node`` is never true (None: any)."""
    exact = _exact_statuses(node)
    if exact is not None:
        return exact
    if isinstance(node, And):
        left, right = _necessary_statuses(node.left), _necessary_statuses(node.right)
        return right if left is None else left if right is None else left & right
    if isinstance(node, Or):
        left, right = _necessary_statuses(node.left), _necessary_statuses(node.right)
        return None if left is None or right is None else left | right
    if isinstance(node, Const) and not node.value:
        return frozenset()
    return None


def _lower_bound(node: Node) -> str | None:
    """A time (iso_time text) that an order's last update is at or after
    whenever ``node`` is true (None: none known)."""
    if isinstance(node, Cmp) and node.name in _UPDATE_BOUNDS and node.op in ("eq", "gt", "ge"):
        return node.value if isinstance(node.value, str) else None
    if isinstance(node, And):
        bounds = [b for b in (_lower_bound(node.left), _lower_bound(node.right)) if b is not None]
        return max(bounds) if bounds else None
    if isinstance(node, Or):
        left, right = _lower_bound(node.left), _lower_bound(node.right)
        return None if left is None or right is None else min(left, right)
    return None


def _necessary_ids(node: Node) -> frozenset[str] | None:
    """The Ids (UUID texts) outside which ``node`` is never true (None: any)."""
    if isinstance(node, Cmp) and node.name == "Id" and node.op == "eq":
        return frozenset({node.value}) if node.value is not None else frozenset()
    if isinstance(node, InSet) and node.name == "Id":
        return frozenset(node.values)
    if isinstance(node, And):
        left, right = _necessary_ids(node.left), _necessary_ids(node.right)
        return right if left is None else left if right is None else left & right
    if isinstance(node, Or):
        left, right = _necessary_ids(node.left), _necessary_ids(node.right)
        return None if left is None or right is None else left | right
    return None


@attrs.frozen
class Hints:
    """What narrows the store's scan. ``statuses``: the OSEO statuses the
    rows may be in (None: any; empty: nothing matches); ``updated_from``: a
    lower bound (Unix seconds) of the orders' last update; ``order_ids``: the
    OSEO order ids the filter names (None: not limited to a list);
    ``index_only``: the filter says no more than ``statuses`` (its count is
    the indexes' and no row needs checking)."""

    statuses: frozenset[OrderStatus] | None = None
    updated_from: float | None = None
    order_ids: tuple[str, ...] | None = None
    index_only: bool = True


def hints_of(node: Node | None) -> Hints:
    if node is None:
        return Hints()
    job_statuses = _necessary_statuses(node)
    statuses = None
    if job_statuses is not None and job_statuses != _ALL:
        statuses = frozenset(s for j in job_statuses for s in oseo_statuses(j))
    bound = _lower_bound(node)
    # (iso_time drops the microseconds: 1 ms less, so the bound never excludes a match)
    updated_from = parse_time(bound) - 0.001 if bound is not None else None
    uuids = _necessary_ids(node)
    order_ids = None
    if uuids is not None:
        order_ids = tuple(sorted({i for i in (order_id_of(u) for u in uuids) if i is not None}))
    return Hints(statuses, updated_from, order_ids, _exact_statuses(node) is not None)


# --- the other options --------------------------------------------------------------


@attrs.frozen
class SortKey:
    name: str
    descending: bool = False


@attrs.frozen
class ListQuery:
    """A list request, checked. ``top`` None: every row (in pages);
    ``select`` None: every property; ``skiptoken``: as given (read by
    :mod:`.search`); ``fingerprint``: what a $skiptoken must have been made
    for (the same filter and order)."""

    entity: edm.EntityType
    filter: Node | None = None
    orderby: tuple[SortKey, ...] = ()
    top: int | None = None
    skip: int = 0
    count: bool = False
    select: tuple[str, ...] | None = None
    skiptoken: str | None = None
    page_size: int = 100
    fingerprint: str = ""
    hints: Hints = Hints()

    def matches(self, row: Mapping[str, Any]) -> bool:
        return self.filter is None or evaluate(self.filter, row) is True


def parse_list_query(args: Mapping[str, str], entity: edm.EntityType, *, page_size: int) -> ListQuery:
    """The query options of a list of ``entity`` (``args``: the URL's query
    arguments, one value each). Arguments without ``$`` are left to the caller."""
    for name in args:
        if name.startswith("$") and name not in OPTIONS:
            if name == "$expand":
                raise bad_request(name, "$expand is not supported: read the navigation property's own URL")
            raise bad_request(name, f"unsupported query option {name[:40]}")
    fmt = args.get("$format")
    if fmt is not None and not fmt.startswith(("json", "application/json")):
        raise bad_request("$format", "only json is served")
    text = args.get("$filter")
    node = parse_filter(text, entity) if text is not None else None
    orderby = _orderby(args.get("$orderby"), entity)
    top = _count_option(args, "$top")
    skip = _count_option(args, "$skip") or 0
    count = args.get("$count", "false").lower()
    if count not in ("true", "false"):
        raise bad_request("$count", "$count takes true or false")
    select = _select(args.get("$select"), entity)
    token = args.get("$skiptoken")
    if token is not None and not token:
        raise bad_request("$skiptoken", "empty $skiptoken")
    fingerprint = "\n".join((entity.name, text or "", args.get("$orderby", "")))
    return ListQuery(entity, node, orderby, top, skip, count == "true", select, token, page_size, fingerprint,
                     hints_of(node))


def _count_option(args: Mapping[str, str], name: str) -> int | None:
    text = args.get(name)
    if text is None:
        return None
    if not text.isdigit() or len(text) > 12:
        raise bad_request(name, f"{name} takes a whole number, 0 or more")
    return int(text)


def _orderby(text: str | None, entity: edm.EntityType) -> tuple[SortKey, ...]:
    if text is None:
        return ()
    keys: list[SortKey] = []
    for part in text.split(","):
        words = part.split()
        if not words or len(words) > 2 or (len(words) == 2 and words[1].lower() not in ("asc", "desc")):
            raise bad_request("$orderby", "$orderby takes properties, each optionally followed by asc or desc")
        prop = entity.field(words[0])
        if prop is None or not prop.queryable:
            raise bad_request("$orderby", f"{entity.name} cannot be ordered by {words[0][:40]!r}")
        keys.append(SortKey(prop.name, len(words) == 2 and words[1].lower() == "desc"))
    if len(keys) > 8:
        raise bad_request("$orderby", "$orderby takes at most 8 properties")
    return tuple(keys)


def _select(text: str | None, entity: edm.EntityType) -> tuple[str, ...] | None:
    if text is None or text.strip() == "*":
        return None
    names: list[str] = []
    for part in text.split(","):
        name = part.strip()
        if name not in entity.names:
            raise bad_request("$select", f"{entity.name} has no property {name[:40]!r}")
        if name not in names:
            names.append(name)
    return tuple(names)
