"""
The chaos test's load client: Submits at a steady rate, each with a unique
orderReference and a unique wsa:MessageID, and GetStatus polls of orders
already acknowledged, spread over the front daemons as a load balancer
would (a daemon that refuses the connection is skipped for the next try).

Every attempt is recorded (start, end, daemon, HTTP status, outcome, the
orderId it acknowledged) for the checks of bench/chaos_checks.py. A Submit
that gets a 503, a lost connection or no answer within the deadline is
tried again, with the same orderReference and the same MessageID, on the
other daemon, after its Retry-After (at most 2 s): what a careful client
does, and what makes an order created twice visible.
"""

from __future__ import annotations

import http.client
import random
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from lxml import etree

from chaos_cluster import COLLECTION, USER, USER_PASSWORD

SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
OSEO = "http://www.opengis.net/oseo/1.0"
WSA = "http://www.w3.org/2005/08/addressing"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
PASSWORD_TEXT = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordText"
CONTENT_TYPE = "application/soap+xml; charset=utf-8"
DEADLINE = 10.0  # seconds for one request, connect to last byte
ATTEMPTS = 3  # tries of one Submit
ITEMS = 2  # items per order


def envelope(payload: str, message_id: str | None = None) -> bytes:
    addressing = f'<wsa:MessageID xmlns:wsa="{WSA}">{message_id}</wsa:MessageID>' if message_id else ""
    return (f'<soap:Envelope xmlns:soap="{SOAP12}" xmlns:wsse="{WSSE}" xmlns:oseo="{OSEO}">'
            f'<soap:Header>{addressing}<wsse:Security soap:mustUnderstand="true"><wsse:UsernameToken>'
            f"<wsse:Username>{USER}</wsse:Username>"
            f'<wsse:Password Type="{PASSWORD_TEXT}">{USER_PASSWORD}</wsse:Password>'
            f"</wsse:UsernameToken></wsse:Security></soap:Header>"
            f"<soap:Body>{payload}</soap:Body></soap:Envelope>").encode()


def submit_payload(reference: str) -> str:
    items = "".join(
        f"<oseo:orderItem><oseo:itemId>item-{n}</oseo:itemId>"
        f"<oseo:productId><oseo:identifier>{reference}-p{n}</oseo:identifier>"
        f"<oseo:collectionId>{COLLECTION}</oseo:collectionId></oseo:productId></oseo:orderItem>"
        for n in range(1, ITEMS + 1))
    return (f'<oseo:Submit service="OS" version="1.0.0"><oseo:orderSpecification>'
            f"<oseo:orderReference>{reference}</oseo:orderReference>"
            f"<oseo:orderType>PRODUCT_ORDER</oseo:orderType>{items}</oseo:orderSpecification>"
            f"<oseo:statusNotification>None</oseo:statusNotification></oseo:Submit>")


def status_payload(order_id: str) -> str:
    return (f'<oseo:GetStatus service="OS" version="1.0.0"><oseo:orderId>{order_id}</oseo:orderId>'
            f"<oseo:presentation>brief</oseo:presentation></oseo:GetStatus>")


@dataclass
class Attempt:
    kind: str  # "submit" or "status"
    daemon: int
    started: float  # time.monotonic()
    ended: float
    status: int  # HTTP status; 0 when there was no answer
    outcome: str  # "ok", "fault", "503", "500", "unparsable", "refused", "lost", "timeout"
    detail: str = ""
    order_id: str = ""
    reference: str = ""
    message_id: str = ""
    retry_after: str = ""


def classify(kind: str, status: int, body: bytes) -> tuple[str, str, str]:
    """(outcome, orderId or '', detail) of one answer."""
    try:
        root = etree.fromstring(body)
    except etree.XMLSyntaxError as e:
        return ("500" if status >= 500 and status != 503 else "unparsable"), "", f"{status}: {e}; {body[:200]!r}"
    if status == 500:
        return "500", "", " ".join(t.strip() for t in root.itertext() if t.strip())[:200]
    fault = root.find(f".//{{{SOAP12}}}Fault")
    if status == 503:
        return ("503" if fault is not None else "unparsable"), "", "503 without a SOAP Fault" if fault is None else ""
    if fault is not None or status != 200:
        text = " ".join(t.strip() for t in root.itertext() if t.strip())[:200]
        return "fault", "", f"{status}: {text}"
    if kind == "submit":
        found = root.find(f".//{{{OSEO}}}orderId")
        if found is None or not found.text:
            return "unparsable", "", "SubmitAck without orderId"
        return "ok", found.text, ""
    if root.find(f".//{{{OSEO}}}GetStatusResponse") is None:
        return "unparsable", "", "no GetStatusResponse"
    return "ok", "", ""


class LoadClient:
    def __init__(self, fronts: list[Any], *, rate: float, status_rate: float, seed: int, tag: str) -> None:
        self.fronts = fronts  # tests.daemon.Daemon: their URL is read again after a restart
        self.rate = rate
        self.status_rate = status_rate
        self.random = random.Random(seed)
        self.tag = tag
        self.attempts: list[Attempt] = []
        self.acknowledged: dict[str, str] = {}  # reference -> the orderId first acknowledged
        self.acks: list[tuple[str, str]] = []  # every (reference, orderId) acknowledged
        self.unacknowledged: list[str] = []  # references never acknowledged after ATTEMPTS tries
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._urls: dict[int, str] = {}
        self._threads: list[threading.Thread] = []
        self._pool = ThreadPoolExecutor(max_workers=48)
        self._count = 0

    # --- the requests ---------------------------------------------------------------

    def _url(self, n: int, refresh: bool = False) -> str:
        if refresh or n not in self._urls:
            try:
                self._urls[n] = self.fronts[n].http + "/oseo"
            except (OSError, KeyError, ValueError):
                return self._urls.get(n, "http://127.0.0.1:9/oseo")
        return self._urls[n]

    def _post(self, kind: str, n: int, body: bytes) -> Attempt:
        url = urlsplit(self._url(n))
        started = time.monotonic()
        status, answer, retry_after, outcome, detail = 0, b"", "", "", ""
        connection = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=DEADLINE)
        try:
            connection.request("POST", url.path, body, {"Content-Type": CONTENT_TYPE})
            response = connection.getresponse()
            status, answer = response.status, response.read()
            retry_after = response.getheader("Retry-After") or ""
        except ConnectionRefusedError:
            outcome = "refused"
            self._url(n, refresh=True)
        except TimeoutError:
            outcome = "timeout"
        except (OSError, http.client.HTTPException) as e:
            outcome, detail = "lost", type(e).__name__
            self._url(n, refresh=True)
        finally:
            connection.close()
        ended = time.monotonic()
        if ended - started > DEADLINE and not outcome:
            outcome, detail = "timeout", f"answered after {ended - started:.1f} s"
        order_id = ""
        if not outcome:
            outcome, order_id, detail = classify(kind, status, answer)
        return Attempt(kind, n, started, ended, status, outcome, detail, order_id, retry_after=retry_after)

    def _submit(self, number: int) -> None:
        reference = f"{self.tag}-{number}"
        message_id = f"urn:uuid:{uuid.uuid4()}"
        body = envelope(submit_payload(reference), message_id)
        first = number % len(self.fronts)
        for attempt in range(ATTEMPTS):
            done = self._post("submit", (first + attempt) % len(self.fronts), body)
            done.reference, done.message_id = reference, message_id
            with self._lock:
                self.attempts.append(done)
                if done.outcome == "ok":
                    self.acks.append((reference, done.order_id))
                    self.acknowledged.setdefault(reference, done.order_id)
            if done.outcome not in ("503", "refused", "lost", "timeout"):
                return
            try:
                pause = min(float(done.retry_after or 1.0), 2.0)
            except ValueError:
                pause = 1.0
            if self._stop.wait(pause):
                break
        with self._lock:
            self.unacknowledged.append(reference)

    def _status(self, n: int) -> None:
        with self._lock:
            if not self.acks:
                return
            reference, order_id = self.random.choice(self.acks)
        done = self._post("status", n, envelope(status_payload(order_id)))
        done.order_id, done.reference = order_id, reference
        with self._lock:
            self.attempts.append(done)

    # --- pacing ---------------------------------------------------------------------

    def _pace(self, rate: float, job: Any) -> None:
        """Start ``job(n)`` ``rate`` times a second (as a pool thread) until stopped."""
        if rate <= 0:
            return
        began, n = time.monotonic(), 0
        while not self._stop.is_set():
            n += 1
            self._pool.submit(job, n)
            pause = began + n / rate - time.monotonic()
            if pause > 0 and self._stop.wait(pause):
                break

    def start(self) -> None:
        for rate, job in ((self.rate, self._submit), (self.status_rate, lambda n: self._status(n % len(self.fronts)))):
            thread = threading.Thread(target=self._pace, args=(rate, job), daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        """No new requests; wait for those in flight (each has its deadline)."""
        self._stop.set()
        for thread in self._threads:
            thread.join()
        self._pool.shutdown(wait=True)

