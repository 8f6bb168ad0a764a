"""Work a client's hang-up must not cut short."""

from __future__ import annotations

from twisted.internet.defer import Deferred


def outlive_the_client(work: Deferred[bytes]) -> Deferred[bytes]:
    """Klein cancels a route's Deferred when the client hangs up. A Submit
    (over /oseo or /odata) whose order is half stored must still be stored
    and handed to processing, so the work goes on and only its answer is
    dropped."""
    answer: Deferred[bytes] = Deferred()
    work.addBoth(lambda result: None if answer.called else answer.callback(result))
    return answer
