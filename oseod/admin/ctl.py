"""``oseoctl``: the operator's command line, a client of the admin API.

It finds the running daemon through its data dir (``endpoints.json`` for the
URL, the admin listener's when there is one, ``admin.token`` for the
credential), so it needs no configuration."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import quote

from ..auth.passwords import hash_password
from ..model.orders import OrderStatus

DEFAULT_DATA_DIR = "var/oseod"
TIMEOUT = 60.0


class CtlError(Exception):
    """A failure to report in one line; ``status`` is the exit status."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


class AdminClient:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        endpoints_file = data_dir / "endpoints.json"
        try:
            endpoints = json.loads(endpoints_file.read_text())
            # The admin API is on the admin listener when the daemon has one.
            self.url = str(endpoints.get("admin") or endpoints["http"]).rstrip("/")
        except FileNotFoundError:
            raise CtlError(f"oseod is not running with data dir {data_dir} ({endpoints_file} is missing)", 3) from None
        except (ValueError, KeyError, TypeError, AttributeError):
            raise CtlError(f"{endpoints_file} is damaged; restart oseod", 3) from None
        try:
            self.token = (data_dir / "admin.token").read_text().strip()
        except OSError as e:
            raise CtlError(f"cannot read {data_dir / 'admin.token'}: {e.strerror} "
                           "(run oseoctl as the user the daemon runs as)", 3) from None

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            f"{self.url}/admin/api{path}", data=data, method=method,
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json",
                     "Accept": "application/json", "X-Oseod-Actor": _local_user()},
        )
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as e:
            try:
                message = json.loads(e.read())["error"]
            except (ValueError, KeyError, TypeError):
                message = f"HTTP {e.code} {e.reason}"
            raise CtlError(message, 1) from None
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise CtlError(f"oseod is not running (nothing answers at {self.url}: {reason})", 3) from None


def _local_user() -> str:
    """Who runs oseoctl, for the daemon's audit log ("" when unknown)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return ""


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if getpass.getpass("Password again: ") != password:
            raise CtlError("passwords do not match", 2)
    else:
        raise CtlError("give the password on standard input with --password-stdin", 2)
    if not password:
        raise CtlError("empty password", 2)
    return password


def _table(rows: Sequence[Sequence[str]]) -> None:
    """Print rows in columns; the last column is not padded."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        print(("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[-1]).rstrip())


def _when(moment: float | None) -> str:
    if not moment:
        return "-"
    return datetime.fromtimestamp(moment, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# Keys whose numbers are moments (Unix seconds in the API's JSON).
_TIME_KEYS = frozenset({"at", "last_login", "expires", "expiration"})


def _is_time(key: str) -> bool:
    return key in _TIME_KEYS or key.endswith("_at")


def _scalar(key: str, value: Any) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)) and _is_time(key):
        return _when(value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _readable(record: dict[str, Any], indent: str = "") -> list[str]:
    """``record`` (an admin API answer) as aligned ``key: value`` lines, times
    in UTC ISO 8601, nested records and lists indented below their key."""
    width = max((len(key) for key in record), default=0) + 1
    lines = []
    for key, value in record.items():
        label = f"{indent}{key + ':':<{width}}"
        if isinstance(value, dict):
            lines.append(f"{indent}{key}:" if value else f"{label}  -")
            lines += _readable(value, indent + "  ")
        elif isinstance(value, list):
            if not value:
                lines.append(f"{label}  -")
                continue
            lines.append(f"{indent}{key}:")
            for entry in value:
                if isinstance(entry, dict):
                    block = _readable(entry, indent + "    ")
                    lines.append(f"{indent}  - {block[0][len(indent) + 4:]}" if block else f"{indent}  -")
                    lines += block[1:]
                else:
                    lines.append(f"{indent}  - {_scalar(key, entry)}")
        else:
            lines.append(f"{label}  {_scalar(key, value)}".rstrip())
    return lines


def _show(record: dict[str, Any], as_json: bool) -> None:
    print(json.dumps(record, indent=2) if as_json else "\n".join(_readable(record)))


def _status(given: str) -> str:
    """An order status as the API names it, whatever its case
    (``cancelled`` is Cancelled); an unknown one is passed on for the daemon
    to refuse, naming the valid ones."""
    return _STATUSES.get(given.lower(), given)


_STATUSES = {status.value.lower(): status.value for status in OrderStatus}


def _print_users(users: list[dict[str, Any]]) -> None:
    rows = [("NAME", "SOURCE", "GROUP", "ADMIN", "DISABLED", "LAST LOGIN", "EMAIL")]
    rows += [(u["name"], u.get("source", "redis"), u["group"] or "-", "yes" if u["admin"] else "no",
              "yes" if u.get("disabled") else "no", _when(u.get("last_login")), u["email"] or "-") for u in users]
    _table(rows)


def _warn(answer: dict[str, Any]) -> None:
    for warning in answer.get("warnings", []):
        print(f"oseoctl: warning: {warning}", file=sys.stderr)


def _user_command(client: AdminClient, args: argparse.Namespace) -> None:
    name = quote(getattr(args, "name", "") or "", safe="")
    if args.action == "add":
        body = {"name": args.name, "password": _read_password(args.password_stdin), "admin": args.admin,
                "group": args.group, "email": args.email}
        user = client.call("POST", "/users", body)
        _warn(user)
        print(f"added user {user['name']} (group {user['group']}{', admin' if user['admin'] else ''})")
    elif args.action == "list":
        users = client.call("GET", "/users")["users"]
        if args.json:
            print(json.dumps(users, indent=2))
        else:
            _print_users(users)
    elif args.action == "show":
        _show(client.call("GET", f"/users/{name}"), args.json)
    elif args.action == "del":
        client.call("DELETE", f"/users/{name}")
        print(f"deleted user {args.name}")
    elif args.action == "passwd":
        _warn(client.call("PUT", f"/users/{name}/password", {"password": _read_password(args.password_stdin)}))
        print(f"changed the password of {args.name}")
    elif args.action == "key":
        _key_command(client, args, name)
    elif args.action == "set":
        changes = {k: v for k, v in (("group", args.group), ("admin", args.admin), ("email", args.email),
                                     ("disabled", args.disabled)) if v is not None}
        if not changes:
            raise CtlError("nothing to change: give --group, --admin/--no-admin, --email or --disable/--enable", 2)
        user = client.call("PATCH", f"/users/{name}", changes)
        print(f"user {user['name']}: group {user['group']}, admin {'yes' if user['admin'] else 'no'}, "
              f"email {user['email'] or '-'}{', disabled' if user.get('disabled') else ''}")


def _key_command(client: AdminClient, args: argparse.Namespace, name: str) -> None:
    if args.key_action == "add":
        text = sys.stdin.read(64 * 1024)
        key = client.call("POST", f"/users/{name}/keys", {"key": text})
        print(f"{'added' if key['added'] else 'already there:'} {key['type']} key {key['fingerprint']} "
              f"for {args.name}")
    elif args.key_action == "list":
        found = client.call("GET", f"/users/{name}/keys")["keys"]
        if args.json:
            print(json.dumps(found, indent=2))
        elif found:
            _table([("FINGERPRINT", "TYPE", "COMMENT")] + [(k["fingerprint"], k["type"], k["comment"] or "-")
                                                           for k in found])
        else:
            print(f"{args.name} has no SSH key")
    elif args.key_action == "del":
        client.call("DELETE", f"/users/{name}/keys/{quote(args.fingerprint, safe='')}")
        print(f"deleted key {args.fingerprint} of {args.name}")


def _token_command(client: AdminClient, args: argparse.Namespace) -> None:
    if args.action == "list":
        found = client.call("GET", "/tokens" + (f"?user={quote(args.user, safe='')}" if args.user else ""))["tokens"]
        if args.json:
            print(json.dumps(found, indent=2))
        elif found:
            _table([("ID", "USER", "GRANT", "ADDRESS", "ISSUED", "EXPIRES")]
                   + [(t["id"], t["user"], t["grant"] or "-", t["address"] or "-", _when(t["created_at"]),
                       _when(t["expires_at"])) for t in found])
        else:
            print("no unexpired token" + (f" of {args.user}" if args.user else ""))
        return
    if (args.token is None) == (args.user is None):
        raise CtlError("give a TOKEN (or its id, as token list shows it) or --user NAME", 2)
    if args.user is not None:
        answer = client.call("POST", "/tokens/revoke", {"user": args.user})
        print(f"revoked {answer['revoked']} token(s) of {answer['user']}")
    else:
        answer = client.call("POST", "/tokens/revoke", {"token": args.token})
        print(f"revoked token {answer['id']} of {answer['user']}")


def _print_orders(orders: list[dict[str, Any]]) -> None:
    rows = [("ID", "USER", "TYPE", "STATUS", "ITEMS", "UPDATED", "REFERENCE", "INFO")]
    rows += [(o["id"], o["owner"], o["type"], o["status"], str(o["items_total"]), _when(o["changed_at"]),
              o["reference"] or "-", o["info"] or "") for o in orders]
    _table(rows)


def _print_page(page: dict[str, Any], as_json: bool, again: str) -> None:
    """The orders of a page (JSON: the list); on stderr, how to get the next."""
    if as_json:
        print(json.dumps(page["orders"], indent=2))
    else:
        _print_orders(page["orders"])
    if page.get("truncated"):
        print("oseoctl: the search stopped after examining its maximum of candidates; more may match",
              file=sys.stderr)
    if page.get("next"):
        print(f"oseoctl: more with {again} --after {page['next']}", file=sys.stderr)


def _query(pairs: list[tuple[str, str]]) -> str:
    return "&".join(f"{k}={quote(v, safe='')}" for k, v in pairs)


def _order_command(client: AdminClient, args: argparse.Namespace) -> None:
    order_id = quote(getattr(args, "id", "") or "", safe="")
    if args.action == "list":
        query = [("status", _status(s)) for s in args.status or ()]
        query += [(name, value) for name, value in (
            ("user", args.user), ("collection", args.collection), ("type", args.type),
            ("reference", args.reference), ("from", getattr(args, "from")), ("to", args.to),
            ("after", args.after)) if value]
        if args.oldest_first:
            query.append(("oldest_first", "1"))
        query.append(("limit", str(args.limit)))
        _print_page(client.call("GET", "/orders?" + _query(query)), args.json, "oseoctl order list ...")
    elif args.action == "show":
        _show(client.call("GET", f"/orders/{order_id}"), args.json)
    elif args.action == "approve":
        order = client.call("POST", f"/orders/{order_id}/approve", {})
        print(f"approved order {order['id']}: {order['status']}")
    elif args.action == "reject":
        order = client.call("POST", f"/orders/{order_id}/reject", {"reason": args.reason})
        print(f"rejected order {order['id']}: {order['info']}")
    elif args.action == "cancel":
        order = client.call("POST", f"/orders/{order_id}/cancel", {"reason": args.reason or ""})
        print(f"cancelled order {order['id']}: {order['info']}")
    elif args.action == "retry":
        retried = client.call("POST", f"/orders/{order_id}/retry", {})
        print(f"order {retried['id']}: {len(retried['items'])} failed item(s) queued again")


def _moderation_command(client: AdminClient, args: argparse.Namespace) -> None:
    query = [("limit", str(args.limit))] + ([("after", args.after)] if args.after else [])
    _print_page(client.call("GET", "/moderation?" + _query(query)), args.json, "oseoctl moderation")


def _audit_command(client: AdminClient, args: argparse.Namespace) -> None:
    query = [("limit", str(args.limit))] + ([("before", args.before)] if args.before else [])
    answer = client.call("GET", "/audit?" + _query(query))
    if args.json:
        print(json.dumps(answer["entries"], indent=2))
        return
    rows = [("WHEN", "WHO", "VIA", "ADDRESS", "ACTION", "TARGET", "DETAIL")]
    rows += [(_when(e["at"]), e["actor"], e["via"], e["address"] or "-", e["action"], e["target"] or "-",
              e["detail"]) for e in answer["entries"]]
    _table(rows)


def _stats_command(client: AdminClient, args: argparse.Namespace) -> None:
    jobs = client.call("GET", "/stats")["jobs"]
    if args.json:
        print(json.dumps(jobs, indent=2))
        return
    waiting = ", ".join(f"{priority} {count}" for priority, count in jobs["waiting"].items())
    print(f"jobs queued: {waiting}; waiting for a retry: {jobs['delayed']}; running here: {jobs['running']}")
    rows = [("COLLECTION", "COMPLETED", "FAILED", "RETRIED", "SECONDS")]
    rows += [(c, str(s["completed"]), str(s["failed"]), str(s["retried"]), f"{s['seconds']:.1f}")
             for c, s in jobs["collections"].items()]
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())


def _subscription_command(client: AdminClient, args: argparse.Namespace) -> None:
    if args.action == "list":
        found = client.call("GET", "/subscriptions")["subscriptions"]
        if args.json:
            print(json.dumps(found, indent=2))
            return
        rows = [("ID", "USER", "STATUS", "COLLECTIONS", "BATCHES", "LAST TIMESLOT", "ENDS")]
        rows += [(s["id"], s["owner"], s["status"], ",".join(s["collections"]) or "-", str(s["batches"]),
                  s["last_timeslot"] or "-", _when(s["ends_at"])) for s in found]
        _table(rows)
        return
    served = client.call("POST", "/subscriptions/timeslot", {"collection": args.collection,
                                                              "timestamp": args.timestamp, "force": args.force})
    orders = served["orders"]
    print(f"timeslot {args.timestamp} of {args.collection}: {len(orders)} subscription(s) served"
          + (f" ({', '.join(orders)})" if orders else ""))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="oseoctl", description="Operate a running oseod daemon.")
    parser.add_argument("--data-dir", default=os.environ.get("OSEOD_DATA_DIR", DEFAULT_DATA_DIR),
                        help="the daemon's data directory (default: $OSEOD_DATA_DIR or %(default)s)")
    topics = parser.add_subparsers(dest="topic", required=True)

    user = topics.add_parser("user", help="manage user accounts").add_subparsers(dest="action", required=True)
    add = user.add_parser("add", help="add a user")
    add.add_argument("name")
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    add.add_argument("--admin", action="store_true", help="give the user the admin flag")
    add.add_argument("--group", default="default", help="the user's group (default: %(default)s)")
    add.add_argument("--email", default="", help="the user's e-mail address")
    listing = user.add_parser("list", help="list users")
    listing.add_argument("--json", action="store_true", help="print JSON")
    user_show = user.add_parser("show", help="show one user")
    user_show.add_argument("name")
    user_show.add_argument("--json", action="store_true", help="print JSON (times in Unix seconds)")
    user.add_parser("del", help="delete a user").add_argument("name")
    passwd = user.add_parser("passwd", help="set a user's password")
    passwd.add_argument("name")
    passwd.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    hashing = user.add_parser("hash", help="print the hash of a password, for a line NAME:HASH[:GROUP] of "
                                           "[auth] password_file (needs no running daemon)")
    hashing.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    change = user.add_parser("set", help="change a user's group, admin flag or e-mail; disable or enable it")
    change.add_argument("name")
    change.add_argument("--group")
    change.add_argument("--admin", action=argparse.BooleanOptionalAction, default=None)
    change.add_argument("--email")
    change.add_argument("--disable", dest="disabled", action="store_const", const=True, default=None,
                        help="refuse the user's logins (SOAP, FTP, HTTP) until enabled")
    change.add_argument("--enable", dest="disabled", action="store_const", const=False,
                        help="let a disabled user log in again")

    key = user.add_parser("key", help="SSH public keys a user logs in with over SFTP").add_subparsers(
        dest="key_action", required=True)
    key.add_parser("add", help="add a key: the line of a .pub file on standard input "
                               "(oseoctl user key add NAME < id_ed25519.pub)").add_argument("name")
    key_list = key.add_parser("list", help="list a user's keys")
    key_list.add_argument("name")
    key_list.add_argument("--json", action="store_true", help="print JSON")
    key_del = key.add_parser("del", help="delete a key by its SHA256: fingerprint")
    key_del.add_argument("name")
    key_del.add_argument("fingerprint")
    token = topics.add_parser("token", help="OAuth2 bearer tokens of /odata/v1/token").add_subparsers(
        dest="action", required=True)
    tokens = token.add_parser("list", help="the unexpired tokens (ids, never the tokens), soonest to expire first")
    tokens.add_argument("--user", help="only this user's")
    tokens.add_argument("--json", action="store_true", help="print JSON (times in Unix seconds)")
    revoke = token.add_parser("revoke", help="revoke a token (given itself or by its id), or all of a user's")
    revoke.add_argument("token", nargs="?", help="the token, or its id as token list shows it")
    revoke.add_argument("--user", help="revoke every token of this user")
    order = topics.add_parser("order", help="list, inspect and moderate orders").add_subparsers(dest="action",
                                                                                               required=True)
    orders = order.add_parser("list", help="list orders, last updated first")
    orders.add_argument("--status", action="append",
                        help="only orders in this status, in any case (repeatable: any of them)")
    orders.add_argument("--user", help="only this user's orders")
    orders.add_argument("--collection", help="only orders with an item of this collection")
    orders.add_argument("--type", help="only orders of this type: PRODUCT_ORDER, SUBSCRIPTION_ORDER, "
                                       "TASKING_ORDER or MASSIVE_ORDER")
    orders.add_argument("--reference", help="only orders with this orderReference")
    orders.add_argument("--from", help="last updated at or after this (ISO 8601 or Unix seconds)")
    orders.add_argument("--to", help="last updated at or before this (ISO 8601 or Unix seconds)")
    orders.add_argument("--oldest-first", action="store_true", help="least recently updated first")
    orders.add_argument("--after", help="the next page: the cursor the previous page printed")
    orders.add_argument("--limit", type=int, default=100, help="at most this many (default: %(default)s)")
    orders.add_argument("--json", action="store_true", help="print JSON")
    order_show = order.add_parser("show", help="show one order and its items")
    order_show.add_argument("id")
    order_show.add_argument("--json", action="store_true", help="print JSON (times in Unix seconds)")
    order.add_parser("approve", help="accept an order waiting for approval").add_argument("id")
    reject = order.add_parser("reject", help="refuse an order waiting for approval")
    reject.add_argument("id")
    reject.add_argument("--reason", required=True, help="why; the client reads it in the order's status")
    cancel = order.add_parser("cancel", help="cancel an unfinished order (any user's)")
    cancel.add_argument("id")
    cancel.add_argument("--reason", help="why; the client reads it in the order's status")
    order.add_parser("retry", help="put an order's failed items back in the queue").add_argument("id")

    moderation = topics.add_parser("moderation", help="orders waiting for approval, oldest first")
    moderation.add_argument("--limit", type=int, default=100, help="at most this many (default: %(default)s)")
    moderation.add_argument("--after", help="the next page: the cursor the previous page printed")
    moderation.add_argument("--json", action="store_true", help="print JSON")

    audit = topics.add_parser("audit", help="what operators did, newest first")
    audit.add_argument("--limit", type=int, default=50, help="at most this many (default: %(default)s)")
    audit.add_argument("--before", help="entries older than this entry id (the next page)")
    audit.add_argument("--json", action="store_true", help="print JSON")

    subscription = topics.add_parser("subscription", help="subscriptions").add_subparsers(dest="action",
                                                                                          required=True)
    timeslot = subscription.add_parser("timeslot", help="a collection's new product: a batch for each "
                                                        "active subscription on it")
    timeslot.add_argument("collection")
    timeslot.add_argument("timestamp", help="ISO 8601, e.g. 2026-11-25T12:00:00Z")
    timeslot.add_argument("--force", action="store_true", help="even if this timeslot was served already")
    subscriptions = subscription.add_parser("list", help="the active subscriptions")
    subscriptions.add_argument("--json", action="store_true", help="print JSON")

    stats = topics.add_parser("stats", help="the job queue and what this daemon's engine made")
    stats.add_argument("--json", action="store_true", help="print JSON")
    return parser


def main(argv: Sequence[str] | None = None) -> NoReturn:
    args = build_parser().parse_args(argv)
    try:
        if args.topic == "user" and args.action == "hash":
            print(hash_password(_read_password(args.password_stdin)))
            sys.exit(0)
        client = AdminClient(Path(args.data_dir))
        if args.topic == "user":
            _user_command(client, args)
        elif args.topic == "order":
            _order_command(client, args)
        elif args.topic == "token":
            _token_command(client, args)
        elif args.topic == "subscription":
            _subscription_command(client, args)
        elif args.topic == "stats":
            _stats_command(client, args)
        elif args.topic == "moderation":
            _moderation_command(client, args)
        elif args.topic == "audit":
            _audit_command(client, args)
    except CtlError as e:
        print(f"oseoctl: {e}", file=sys.stderr)
        sys.exit(e.status)
    except KeyboardInterrupt:
        sys.exit(130)
    sys.exit(0)
