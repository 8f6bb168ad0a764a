"""Log observers for ``twistd --logger``: plain text or JSON lines on stdout,
with the debug chatter of Twisted's FTP module filtered out.

    twistd -n --pidfile= --logger oseod.logs.text_stdout oseod ...
    twistd -n --pidfile= --logger oseod.logs.json_stdout oseod ...

``OSEOD_LOG_LEVEL`` (debug, info, warn, error; default info) sets the floor.
"""

from __future__ import annotations

import os
import sys

from twisted.logger import (
    FilteringLogObserver,
    ILogObserver,
    LogLevel,
    LogLevelFilterPredicate,
    jsonFileLogObserver,
    textFileLogObserver,
)

from .ftp.noise import ftp_chatter


def _level() -> LogLevelFilterPredicate:
    name = os.environ.get("OSEOD_LOG_LEVEL", "info").lower()
    try:
        level = LogLevel.levelWithName(name)
    except Exception:
        level = LogLevel.info
    return LogLevelFilterPredicate(defaultLogLevel=level)


def filtered(observer: ILogObserver) -> ILogObserver:
    return FilteringLogObserver(observer, [ftp_chatter, _level()])


def text_stdout() -> ILogObserver:
    return filtered(textFileLogObserver(sys.stdout))


def json_stdout() -> ILogObserver:
    # No RFC 7464 record separator: one JSON object per line, as journald,
    # jq and log shippers expect.
    return filtered(jsonFileLogObserver(sys.stdout, recordSeparator=""))
