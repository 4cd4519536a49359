"""Typed keys for what lives on the application and on each request (no singletons)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from config import Settings
from routing.agreements.changes import Agreements
from routing.clock import Clock
from routing.delivery.intake import Delivery
from routing.delivery.scheduler import DeliveryWorker
from routing.jobs.cluster import Cluster
from routing.jobs.periodic import Periodic
from routing.jobs.pull import Puller
from routing.jobs.retention import RetentionSweeper
from routing.peers.client import PeerClient
from routing.peers.transport import Transport
from routing.proxies import Proxies
from routing.registry.clientinfo import ClientInfoList
from routing.registry.directory import Directory
from routing.registry.registration import Registry
from routing.service import RoutingService
from routing.versions.flow import Flow
from storage.db import Store
from storage.models import TokenRecord


@dataclass(frozen=True)
class Caller:
    """Who is calling: the token record it presented and the token itself (for credentials GET)."""

    token: TokenRecord
    raw_token: str

    @property
    def platform_id(self) -> int:
        """The calling platform's id."""
        return self.token.platform_id


SETTINGS = web.AppKey("settings", Settings)
CLOCK = web.AppKey("clock", Clock)
STORE = web.AppKey("store", Store)
TRANSPORT = web.AppKey("transport", Transport)
CLIENT = web.AppKey("client", PeerClient)
REGISTRY = web.AppKey("registry", Registry)
DIRECTORY = web.AppKey("directory", Directory)
CLIENT_INFO = web.AppKey("client_info", ClientInfoList)  # the HubClientInfo list, built per directory change
DELIVERY = web.AppKey("delivery", Delivery)
WORKER = web.AppKey("worker", DeliveryWorker)
PROXIES = web.AppKey("proxies", Proxies)
PULLER = web.AppKey("puller", Puller)
ROUTING = web.AppKey("routing", RoutingService)
RETENTION = web.AppKey("retention", RetentionSweeper)
STARTED_AT = web.AppKey("started_at", float)
CLUSTER = web.AppKey("cluster", Cluster)
AGREEMENTS = web.AppKey("agreements", Agreements)
AGREEMENT_WATCH = web.AppKey("agreement_watch", Periodic)
TOKEN_A_ROUTES = web.AppKey("token_a_routes", set)  # set[web.AbstractResource]

CALLER = web.RequestKey("caller", Caller)
# The OCPI version of the URL a request came in on (/ocpi/2.1.1/..., /ocpi/2.2.1/..., /ocpi/2.3.0/...).
OCPI_VERSION = web.RequestKey("ocpi_version", str)
# Translation losses of this request's message (routing/versions), for its traffic record.
LOSSES = web.RequestKey("losses", list)
# This request's translation Flow (routing/versions/flow.py): opened by its handler, closed by the pipeline.
TRANSLATION = web.RequestKey("translation", Flow)
REQUEST_ID = web.RequestKey("request_id", str)
CORRELATION_ID = web.RequestKey("correlation_id", str)
# The routing headers an error answer of the hub carries (FROM = hub, TO = requester): set once the
# caller is known, as a function, since most requests never need them.
ERROR_HEADERS: web.RequestKey[Callable[[], dict[str, str]]] = web.RequestKey("error_headers")
