"""
twistd plugin for oseod: makes ``twistd oseod`` (and ``twist oseod``) work.

Kept to one ServiceMaker that names ``oseod.tap`` by string, as Twisted's own
``twisted/plugins/twisted_ftp.py`` does: twistd imports every plugin module when it
lists or caches plugins, so this file must stay cheap to import. The options and
the service tree live in ``oseod.tap`` and are only imported when oseod is run.

There is deliberately no ``__init__.py`` in ``twisted/`` or ``twisted/plugins/``:
this directory is merged into Twisted's own ``twisted.plugins`` package.
"""

from twisted.application.service import ServiceMaker

oseod = ServiceMaker(
    "oseod",
    "oseod.tap",
    "OGC OSEO 1.0 ordering server: SOAP/HTTP, FTP, job queue and admin API in one process",
    "oseod",
)
