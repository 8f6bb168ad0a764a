"""Every plug-in point is a zope interface, and every class that declares
one (``@implementer``) has what it promises: the methods, with arguments the
callers can pass. Found by walking the package, so a new implementation is
checked without a line here; the plug-in points named below must each have
one at least (a renamed or removed implementation fails here, not at a
caller)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from twisted.cred.checkers import ICredentialsChecker
from twisted.cred.portal import IRealm
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock
from zope.interface import Interface, implementedBy
from zope.interface.interface import InterfaceClass
from zope.interface.verify import verifyClass, verifyObject

import oseod
from oseod.core.orderstate import IDispatcher
from oseod.ftp.tree import IDeliverableTree
from oseod.jobs.archive import ArchiveProcessor
from oseod.jobs.command import CommandProcessor
from oseod.jobs.dummy import DummyProcessor
from oseod.jobs.fetch import HttpProcessor
from oseod.jobs.processors import IItemProcessor, IMassiveExpansion, IOrderChecks, IQuotes
from oseod.jobs.push import IPusher
from oseod.notify.mail import IMailSender
from oseod.notify.sender import IOutboxChannel
from tests.pools import POOLS

# oseod's own plug-in points, and the Twisted ones oseod plugs into.
PLUG_IN_POINTS = (IItemProcessor, IPusher, IOutboxChannel, IMailSender, IDeliverableTree, IDispatcher,
                  ICredentialsChecker, IRealm)


def _modules() -> Iterator[str]:
    for info in pkgutil.walk_packages(oseod.__path__, "oseod."):
        yield info.name


def _implementations() -> list[tuple[InterfaceClass, type]]:
    found = []
    for name in _modules():
        module = importlib.import_module(name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ != name:
                continue  # checked where it is defined
            for iface in implementedBy(cls).declared:
                found.append((iface, cls))
    return found


IMPLEMENTATIONS = _implementations()


def test_the_walk_finds_the_plug_ins() -> None:
    interfaces = {iface for iface, _ in IMPLEMENTATIONS}
    missing = [iface.__name__ for iface in PLUG_IN_POINTS if iface not in interfaces]
    assert not missing, f"no @implementer class found for {missing}"


@pytest.mark.parametrize(("iface", "cls"), IMPLEMENTATIONS,
                         ids=[f"{cls.__module__}.{cls.__qualname__}-{iface.__name__}" for iface, cls in IMPLEMENTATIONS])
def test_implementation_has_the_interface(iface: InterfaceClass, cls: type) -> None:
    assert verifyClass(iface, cls)


def test_oseod_interfaces_are_zope_interfaces() -> None:
    """No plug-in point of oseod's own is an ABC: every class named I<Name>
    is a zope interface, and none is a typing.Protocol or ABC."""
    for name in _modules():
        module = importlib.import_module(name)
        for attr, obj in vars(module).items():
            # (A class: an upper-case constant such as INPUT_... is no interface.)
            if (attr.startswith("I") and attr[1:2].isupper() and not attr.isupper()
                    and getattr(obj, "__module__", None) == name):
                assert isinstance(obj, InterfaceClass) and obj.isOrExtends(Interface), f"{name}.{attr}"
            if inspect.isclass(obj) and getattr(obj, "__module__", None) == name:
                assert not inspect.isabstract(obj), f"{name}.{attr} is an ABC: make it a zope interface"


def test_the_built_in_processors_provide_their_interface(tmp_path: Path) -> None:
    """The built-in processors as built from their options (instances: what
    __init__ sets counts too)."""
    reactor = MemoryReactorClock()
    built = [
        DummyProcessor({}, reactor, Clock(), threads=POOLS),
        CommandProcessor({"argv": ["/bin/true", "{product_id}"]}, reactor, Clock(), threads=POOLS),
        ArchiveProcessor({"root": str(tmp_path)}, reactor, Clock(), threads=POOLS),
        HttpProcessor({"url": "http://127.0.0.1:9/{product_id}"}, reactor, Clock(), threads=POOLS),
    ]
    for processor in built:
        assert verifyObject(IItemProcessor, processor)
        for optional in (IOrderChecks, IQuotes, IMassiveExpansion):
            if optional.providedBy(processor):
                assert verifyObject(optional, processor)
