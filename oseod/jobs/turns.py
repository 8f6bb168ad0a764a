"""How much of a reactor turn the engine may take.

The engine shares the reactor thread with the requests. Its work comes in
bursts: the jobs of one claim start together, and when items complete (a
thread pool's results come back together, or a processor that answers at
once runs a job's every item in one go) each completion starts the next
item at once. Left alone, such a burst runs to its end in the turn it
began, and a request that arrived meanwhile waits behind all of it.

:class:`TurnBudget` caps it: each piece of work first takes its units from
the budget (an item's start one; a job's start one per item of the job, as
it reads the job's whole order and starts its items); once ``PER_TURN``
units have run, the rest waits for a later turn (``callLater(0)``), after
the reactor has looked at its sockets again, and the budget is whole again.
A turn thus runs at most ``PER_TURN`` units of the engine's (or one piece
larger than that). It costs the engine next to nothing: ``take`` answers at
once while the budget lasts, and the budget is only renewed through the
reactor once it is spent (one ``callLater(0)`` every ``PER_TURN`` units,
whether or not those units came in one turn: not worth telling apart). A
burst keeps its order: every piece runs, a slice per turn, first come first
served.
"""

from __future__ import annotations

from collections import deque

from twisted.internet import defer
from twisted.internet.interfaces import IDelayedCall, IReactorTime

# Units a turn may hold. An item's start costs some tens of µs of the reactor
# thread, so a slice of them about a millisecond; a job's start costs about
# its items' worth (its order decoded: ~5 ms for 200 items) and a large one
# has a turn to itself. A request waits that long behind the engine, not
# behind the whole burst (8 claimed jobs of 200 items: ~40 ms in one turn).
PER_TURN = 32


class TurnBudget:
    def __init__(self, reactor: IReactorTime, per_turn: int = PER_TURN) -> None:
        self._reactor = reactor
        self._per_turn = max(per_turn, 1)
        self._spent = 0
        self._waiting: deque[tuple[int, defer.Deferred[None]]] = deque()
        self._next: IDelayedCall | None = None

    def take(self, units: int = 1) -> defer.Deferred[None]:
        """Fires once work of ``units`` may run (a turn holds at least one
        piece of work, however large): now while the budget lasts, else in a
        later turn."""
        units = min(max(units, 1), self._per_turn)
        if self._spent + units <= self._per_turn and not self._waiting:
            self._spent += units
            return defer.succeed(None)
        waiting: defer.Deferred[None] = defer.Deferred(lambda d: self._forget(d))
        self._waiting.append((units, waiting))
        if self._next is None:
            self._next = self._reactor.callLater(0, self._turn)
        return waiting

    @property
    def waiting(self) -> int:
        """Pieces of work put off to a later turn, not run yet."""
        return len(self._waiting)

    def _turn(self) -> None:
        self._next = None
        self._spent = 0
        while self._waiting and self._spent + self._waiting[0][0] <= self._per_turn:
            units, waiting = self._waiting.popleft()
            self._spent += units
            waiting.callback(None)
        if self._waiting and self._next is None:
            self._next = self._reactor.callLater(0, self._turn)

    def _forget(self, waiting: defer.Deferred[None]) -> None:
        """Work put off was cancelled (its job stopped): it waits no more."""
        for entry in self._waiting:
            if entry[1] is waiting:
                self._waiting.remove(entry)
                return
