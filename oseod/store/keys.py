"""Every Redis key name the daemon uses, in one place.

Nothing outside ``oseod.store`` builds a key. All keys share one prefix so an
operator can tell oseod's data apart in a Redis shared with other software.
"""

from __future__ import annotations

PREFIX = "oseod:"


def user(name: str) -> str:
    """Hash: one user account (password hash, group, admin flag, e-mail...)."""
    return f"{PREFIX}user:{name}"


def users() -> str:
    """Set: the names of all user accounts."""
    return f"{PREFIX}users"


def schema_version() -> str:
    """String: the layout version of the data (oseod.store.orders.LAYOUT_VERSION),
    set once every stored order is in that layout."""
    return f"{PREFIX}schema"


def index_cursor() -> str:
    """String: the next order id to bring into the current layout
    (OrderStore.index_older_orders), while that is under way."""
    return f"{PREFIX}schema:cursor"


def nonce(value: str) -> str:
    """String with a TTL: a WS-Security nonce seen within the freshness window."""
    return f"{PREFIX}nonce:{value}"


def login_failures(scope: str, subject_digest: str) -> str:
    """Hash with a TTL (a little over the lock-out window): failed logins of
    one user name (``scope`` "user") or client address ("addr") on every
    transport (oseod.store.lockouts). Named by the SHA-256 of the name or
    address: client-chosen text never appears in a key."""
    return f"{PREFIX}login:failures:{scope}:{subject_digest}"


# --- orders (oseod.store.orders) ------------------------------------------------
# An order is two or three keys of its own plus its entries in sorted-set indexes.
# Index members are order ids zero-padded to 20 characters (old numeric ids and
# random ones alike: a random id never starts with 0), so that orders updated in
# the same instant sort by id; every index is scored by the order's last update.
# ``owner`` None names the index across all users (operators' lists, moderation).


def order_sequence() -> str:
    """String counter: the last numeric order id reserved, by versions that
    counted ids (now random, oseod.store.orderids): where the indexing of
    older orders stops."""
    return f"{PREFIX}orders:seq"


def order(order_id: str) -> str:
    """Hash: one order (owner, spec JSON, notification JSON, status, counters)."""
    return f"{PREFIX}order:{order_id}"


def order_items(order_id: str) -> str:
    """Hash: the download counts of the order's items; of an order stored
    before layout 3 (oseod.store.orders), also the items' state, fields
    ``s/ITEM`` (StatusInfo JSON), ``c/ITEM`` (completion time) and ``b/ITEM``
    (batch number, when not 0), which layout 3 keeps in the order hash."""
    return f"{PREFIX}order:{order_id}:items"


def order_ready(order_id: str) -> str:
    """Sorted set, of an order stored before layout 3 only: ids of the
    order's items with a result, scored by completion sequence number
    (DescribeResultAccess nextReady; layout 3: ``r/ITEM`` in the order hash)."""
    return f"{PREFIX}order:{order_id}:ready"


def active_items(owner: str) -> str:
    """String counter: the owner's items not in a final status."""
    return f"{PREFIX}orders:u:{owner}:active"


def orders_updated(owner: str | None) -> str:
    """Sorted set, written by versions before issue 16's footprint work
    only: every order of ``owner`` (or of everybody). Orders are taken out of
    it as they change; the status indexes together are this index."""
    return f"{PREFIX}orders:u:{owner}:updated" if owner is not None else f"{PREFIX}orders:updated"


def orders_in_status(owner: str | None, status: str) -> str:
    """Sorted set: the orders of ``owner`` (or of everybody) now in ``status``."""
    scope = f"u:{owner}:" if owner is not None else ""
    return f"{PREFIX}orders:{scope}status:{status}"


def orders_with_reference(owner: str | None, reference: str) -> str:
    """Sorted set: the orders of ``owner`` (or of everybody) with this orderReference."""
    scope = f"u:{owner}:" if owner is not None else ""
    return f"{PREFIX}orders:{scope}ref:{reference}"


# --- the job queue (oseod.store.jobs) ----------------------------------------------


def job_stream(priority: str) -> str:
    """Stream: jobs waiting or being worked on, one stream per priority
    (FAST_TRACK, STANDARD); workers read them through one consumer group."""
    return f"{PREFIX}jobs:{priority}"


def delayed_jobs() -> str:
    """Sorted set: jobs waiting for a retry, scored by when they are due."""
    return f"{PREFIX}jobs:delayed"


def results_by_completion() -> str:
    """Sorted set: every item with a result, as the JSON array [member, item
    id] (member: the zero-padded order id), scored by its completion time; the
    expiry task reads the oldest."""
    return f"{PREFIX}results:completed"


# --- WS-Notification subscriptions (oseod.store.wsn) --------------------------------


def wsn_subscription(subscription_id: str) -> str:
    """Hash: one WS-Notification subscription (owner, consumer, topics, end)."""
    return f"{PREFIX}wsn:sub:{subscription_id}"


def wsn_subscriptions(owner: str) -> str:
    """Sorted set: the ids of ``owner``'s WS-Notification subscriptions, scored by their end (inf: none)."""
    return f"{PREFIX}wsn:u:{owner}"


# --- the outbox (oseod.store.outbox) -----------------------------------------------


def outbox_queue(channel: str, name: str) -> str:
    """List: messages waiting to go out on ``channel`` for ``name`` (an order
    id: one queue per order, so that its messages leave in order), oldest first."""
    return f"{outbox_queue_prefix()}{channel}:{name}"


def outbox_queue_prefix() -> str:
    """What every outbox queue's name starts with (the scripts that serve
    several queues at once build their names from it)."""
    return f"{PREFIX}outbox:"


def outbox_due() -> str:
    """Sorted set: the queues with a message to send, members
    ``CHANNEL:NAME``, scored by when their first message is due (or when the
    daemon sending it may be presumed dead)."""
    return f"{PREFIX}outbox:due"


def outbox_failures() -> str:
    """List: the last messages given up on (JSON), newest first, bounded."""
    return f"{PREFIX}outbox:failures"


def outbox_sequences() -> str:
    """Hash: per queue filled by name (not by an order's change), the number of its last message."""
    return f"{PREFIX}outbox:seqs"


def outbox_counters() -> str:
    """Hash: messages sent, retried and given up on, per channel."""
    return f"{PREFIX}outbox:counters"


# --- quotations (oseod.store.quotations) -----------------------------------------------


def quotation(quotation_id: str) -> str:
    """Hash with a TTL (the quotation's validity): one quotation, fields
    ``owner`` and ``data`` (its JSON). Deleted when a Submit orders it."""
    return f"{PREFIX}quotation:{quotation_id}"


def leader() -> str:
    """String with a TTL: which daemon runs the periodic tasks (its name)."""
    return f"{PREFIX}leader"


def leader_epoch() -> str:
    """String counter: incremented by each taking of the leader lock, the
    leader's fencing token (oseod.store.leader.Fence)."""
    return f"{PREFIX}leader:epoch"


def subscriptions(collection_id: str) -> str:
    """Sorted set: the subscription orders on a collection, scored by their end."""
    return f"{PREFIX}subscriptions:{collection_id}"


# --- console (oseod.store.sessions) ------------------------------------------------
# Secrets never appear in these names: a session is named by the SHA-256 of its token.


def console_session(token_digest: str) -> str:
    """Hash with a TTL (a little over the idle timeout): one operator's console
    session (user, CSRF token, last activity, pending flash messages)."""
    return f"{PREFIX}console:session:{token_digest}"




# --- OAuth2 bearer tokens (oseod.store.tokens) ------------------------------------
# Secrets never appear in these names: a token is named by its id, the first
# 16 hex digits of its SHA-256; its hash keeps the whole digest.


def access_token(token_id: str) -> str:
    """Hash with a TTL (a little over the token's lifetime): one bearer token
    (user, digest, created, expires, grant, address, password mark)."""
    return f"{access_token_prefix()}{token_id}"


def access_token_prefix() -> str:
    """What every token hash's name starts with (the scripts that drop
    several tokens build their names from it)."""
    return f"{PREFIX}oauth:token:"


def access_tokens(owner: str | None) -> str:
    """Sorted set: the ids of ``owner``'s unexpired tokens (or everybody's),
    scored by when each expires."""
    return f"{access_tokens_prefix()}{owner}" if owner is not None else f"{PREFIX}oauth:tokens"


def access_tokens_prefix() -> str:
    """What every user's token set's name starts with."""
    return f"{PREFIX}oauth:tokens:u:"


# --- what operators see (oseod.store.orders, .audit, .stats, .users, .outbox, .leader) ---
# Written by the same scripts as the changes they describe; read by
# oseod.admin.actions. Logs are capped lists; counters of time are buckets
# with a TTL, so nothing here grows without bound.


def orders_in_collection(collection_id: str) -> str:
    """Sorted set: everybody's orders with an item of this collection, scored by last update."""
    return f"{PREFIX}orders:coll:{collection_id}"


def orders_of_type(order_type: str) -> str:
    """Sorted set: everybody's orders of this type (MASSIVE_ORDER apart from
    PRODUCT_ORDER), scored by last update."""
    return f"{PREFIX}orders:type:{order_type}"


def order_history(order_id: str) -> str:
    """List, of an order stored before layout 3 only: the order's changes of
    status (JSON: at, status, info, by), oldest first, capped (layout 3: ``h/N``
    and ``i/N`` in the order hash)."""
    return f"{PREFIX}order:{order_id}:history"


def order_downloads(order_id: str) -> str:
    """List: every transfer of the order's results, complete or not (JSON), oldest first, capped."""
    return f"{PREFIX}order:{order_id}:downloads"


def outbox_log(channel: str, name: str) -> str:
    """List: what became of the messages of one outbox queue (sent, retry,
    given up; JSON), oldest first, capped; deleted with its order."""
    return f"{PREFIX}outboxlog:{channel}:{name}"


def items_by_status() -> str:
    """Hash: how many items of all stored orders are in each status."""
    return f"{PREFIX}stats:items"


def hour_bucket(hour: int) -> str:
    """Hash with a TTL: items completed, failed and downloads in the hour
    starting at Unix time ``hour``."""
    return f"{PREFIX}stats:hour:{hour}"


def minute_bucket(minute: int) -> str:
    """Hash with a TTL: the same per minute starting at Unix time ``minute``."""
    return f"{PREFIX}stats:minute:{minute}"


def audit_log() -> str:
    """Stream: every operator action (who, via, address, action, target, detail), capped."""
    return f"{PREFIX}audit"


def logins() -> str:
    """Hash: per user name, the last real password check that let it in (JSON: source, at)."""
    return f"{PREFIX}logins"


def task_runs() -> str:
    """Hash: per periodic task, its last run (JSON: at, seconds, ok)."""
    return f"{PREFIX}schedule:runs"


def submit_message(owner: str, message_digest: str) -> str:
    """String with a TTL (a day): the order that the owner's Submit with this
    wsa:MessageID made (named by the SHA-256 of the MessageID: client-chosen
    text never appears in a key), so a retry answers it again."""
    return f"{PREFIX}submitted:u:{owner}:{message_digest}"


def ssh_keys(name: str) -> str:
    """Hash: the SSH public keys user ``name`` may log in with over SFTP
    (oseod.store.sshkeys), field the key's ``SHA256:`` fingerprint, value
    its OpenSSH line."""
    return f"{PREFIX}sshkeys:{name}"
