"""How much of a reactor turn the engine may take.

The engine shares the reactor thread with the requests. Its work comes in
bursts: the jobs of one claim start together, and when items complete (a
thread pool's results come back together, or a processor that answers at
once runs a job's every item in one go) each completion starts the next
item at once. Left alone, such a burst runs to its end in the turn it
began, and a request that arrived meanwhile waits behind all of it.

:class:`TurnBudget` caps it: each unit of work (starting a job, starting an
item) first takes a unit from the budget; once ``PER_TURN`` units have run,
the rest waits for a later turn (``callLater(0)``), after the reactor has
looked at its sockets again, and the budget is whole again. A turn thus
runs at most ``PER_TURN`` units of the engine's. It costs the engine next
to nothing: ``take`` answers at once while the budget lasts, and the budget
is only renewed through the reactor once it is spent (one ``callLater(0)``
every ``PER_TURN`` units, whether or not those units came in one turn: not
worth telling apart). A burst keeps its order: every unit runs, a slice per
turn, first come first served.
"""

from __future__ import annotations

from collections import deque

from twisted.internet import defer
from twisted.internet.interfaces import IDelayedCall, IReactorTime

# Units a turn may hold. Starting a job or an item costs tens of µs of the
# engine's own code, so a turn's share stays around a millisecond: a request
# waits at most that long behind the engine.
PER_TURN = 32


class TurnBudget:
    def __init__(self, reactor: IReactorTime, per_turn: int = PER_TURN) -> None:
        self._reactor = reactor
        self._per_turn = max(per_turn, 1)
        self._spent = 0
        self._waiting: deque[defer.Deferred[None]] = deque()
        self._next: IDelayedCall | None = None

    def take(self) -> defer.Deferred[None]:
        """Fires once the work may run: now while the budget lasts, else in
        a later turn."""
        if self._spent < self._per_turn and not self._waiting:
            self._spent += 1
            return defer.succeed(None)
        waiting: defer.Deferred[None] = defer.Deferred(lambda d: self._forget(d))
        self._waiting.append(waiting)
        if self._next is None:
            self._next = self._reactor.callLater(0, self._turn)
        return waiting

    @property
    def waiting(self) -> int:
        """Units put off to a later turn, not run yet."""
        return len(self._waiting)

    def _turn(self) -> None:
        self._next = None
        self._spent = 0
        while self._waiting and self._spent < self._per_turn:
            self._spent += 1
            self._waiting.popleft().callback(None)
        if self._waiting and self._next is None:
            self._next = self._reactor.callLater(0, self._turn)

    def _forget(self, waiting: defer.Deferred[None]) -> None:
        """A unit put off was cancelled (its job stopped): it waits no more."""
        try:
            self._waiting.remove(waiting)
        except ValueError:
            pass
