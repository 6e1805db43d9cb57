"""dhtviewer: a BitTorrent Mainline DHT node with a live desktop view of what it does, and a
library to script the same node.

.. include:: ../docs/guide.md
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# The public API, imported on first use: the GUI imports this package at start and must not pay
# for asyncio sessions or cryptography before it needs them (tests/test_package.py checks).
_EXPORTS: dict[str, str] = {
    "Dht": "dhtviewer.api",
    "MethodHandler": "dhtviewer.api",
    "TaskFunction": "dhtviewer.api",
    "ReplyFields": "dhtviewer.api",
    "BlockingDht": "dhtviewer.blocking",
    "BlockingEvents": "dhtviewer.blocking",
    "BlockingLookup": "dhtviewer.blocking",
    "DhtSettings": "dhtviewer.dht.settings",
    "RoutingPolicy": "dhtviewer.dht.routing_policy",
    "DhtNode": "dhtviewer.dht.node",
    "LookupLimitError": "dhtviewer.dht.lookups",
    "TransactionOwner": "dhtviewer.dht.transactions",
    "Pending": "dhtviewer.dht.transactions",
    "NodeInfo": "dhtviewer.dht.messages",
    "Response": "dhtviewer.dht.messages",
    "ErrorMessage": "dhtviewer.dht.messages",
    "UnknownQuery": "dhtviewer.dht.messages",
    "PutRequest": "dhtviewer.dht.item_lookup",
    "RoutingSnapshot": "dhtviewer.dht.routing_table",
    "QueryError": "dhtviewer.net.queries",
    "SessionTask": "dhtviewer.net.extensions",
    "RoutingPolicyFactory": "dhtviewer.net.extensions",
    "EventStream": "dhtviewer.net.subscriptions",
    "DhtSession": "dhtviewer.net.session",
    "StateChanged": "dhtviewer.net.session",
    "SessionClosedError": "dhtviewer.net.session",
    "BootstrapError": "dhtviewer.net.session",
    "BindError": "dhtviewer.net.transport",
    "PortInUseError": "dhtviewer.net.transport",
    "InfohashError": "dhtviewer.infohash",
    "LookupHandle": "dhtviewer.net.handles",
    "LookupResult": "dhtviewer.net.handles",
    "FamilyLookup": "dhtviewer.net.handles",
    "AnnounceResult": "dhtviewer.net.handles",
    "ItemResult": "dhtviewer.net.handles",
    "PutResult": "dhtviewer.net.handles",
    "ScrapeResult": "dhtviewer.net.handles",
    "SampleResult": "dhtviewer.net.handles",
    "PingResult": "dhtviewer.net.handles",
    "LocalTestnet": "dhtviewer.net.testnet",
}
_MODULES: dict[str, str] = {"events": "dhtviewer.dht.events"}

# In the order the reference shows them: the entry points, then what they return and raise,
# then the extension points and the core.
__all__ = [  # noqa: RUF022 (reading order)
    "Dht",
    "BlockingDht",
    "DhtSettings",
    "events",
    "LookupHandle",
    "BlockingLookup",
    "EventStream",
    "BlockingEvents",
    "LookupResult",
    "FamilyLookup",
    "AnnounceResult",
    "PingResult",
    "ItemResult",
    "PutResult",
    "PutRequest",
    "ScrapeResult",
    "SampleResult",
    "RoutingSnapshot",
    "StateChanged",
    "QueryError",
    "SessionClosedError",
    "BootstrapError",
    "BindError",
    "PortInUseError",
    "InfohashError",
    "LookupLimitError",
    "MethodHandler",
    "ReplyFields",
    "Response",
    "ErrorMessage",
    "UnknownQuery",
    "NodeInfo",
    "RoutingPolicy",
    "RoutingPolicyFactory",
    "TaskFunction",
    "SessionTask",
    "DhtSession",
    "DhtNode",
    "TransactionOwner",
    "Pending",
    "LocalTestnet",
    "__version__",
]

if TYPE_CHECKING:
    from dhtviewer.api import Dht, MethodHandler, ReplyFields, TaskFunction
    from dhtviewer.blocking import BlockingDht, BlockingEvents, BlockingLookup
    from dhtviewer.dht import events
    from dhtviewer.dht.item_lookup import PutRequest
    from dhtviewer.dht.lookups import LookupLimitError
    from dhtviewer.dht.messages import ErrorMessage, NodeInfo, Response, UnknownQuery
    from dhtviewer.dht.node import DhtNode
    from dhtviewer.dht.routing_policy import RoutingPolicy
    from dhtviewer.dht.routing_table import RoutingSnapshot
    from dhtviewer.dht.settings import DhtSettings
    from dhtviewer.dht.transactions import Pending, TransactionOwner
    from dhtviewer.infohash import InfohashError
    from dhtviewer.net.extensions import RoutingPolicyFactory, SessionTask
    from dhtviewer.net.handles import (
        AnnounceResult,
        FamilyLookup,
        ItemResult,
        LookupHandle,
        LookupResult,
        PingResult,
        PutResult,
        SampleResult,
        ScrapeResult,
    )
    from dhtviewer.net.queries import QueryError
    from dhtviewer.net.session import (
        BootstrapError,
        DhtSession,
        SessionClosedError,
        StateChanged,
    )
    from dhtviewer.net.subscriptions import EventStream
    from dhtviewer.net.testnet import LocalTestnet
    from dhtviewer.net.transport import BindError, PortInUseError


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is not None:
        value = getattr(importlib.import_module(module), name)
    elif name in _MODULES:
        value = importlib.import_module(_MODULES[name])
    else:
        raise AttributeError(f"module 'dhtviewer' has no attribute {name!r}")
    globals()[name] = value  # looked up once
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
