"""The hub's HTTP/1.1 transport to partners (routing/peers/transport.py), byte by byte.

Each partner here is a real TCP server on 127.0.0.1 that writes exactly the bytes a test scripts
(chunked, compressed, read-until-close, 1xx first, a second answer nobody asked for, a connection
closed while idle, a head that never ends, TLS with a test CA), and records every request and
connection, so what the hub put on the wire and how it used its connections is asserted, not
assumed. Calls go through PeerClient where the OCPI meaning matters (errors, statuses).
"""

from __future__ import annotations

import asyncio
import functools
import gzip
import json
import ssl
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
import trustme
import uvloop
from yarl import URL

from routing.peers.client import PeerClient
from routing.peers.transport import BodyTooLarge, Transport, TransportError
from routing.protocol.errors import AnswerTooLarge, ConnectionProblem, ReceiverTimeout
from tests.support.waiting import wait_for

OK = b'{"status_code":1000,"timestamp":"2026-12-06T00:00:00Z"}'


@dataclass
class Request:
    head: list[str]
    body: bytes

    @property
    def line(self) -> str:
        return self.head[0]

    def header(self, name: str) -> str | None:
        for line in self.head[1:]:
            key, _, value = line.partition(":")
            if key.strip().lower() == name.lower():
                return value.strip()
        return None


Script = Callable[["Conn", Request], Awaitable[bool]]  # answers one request; False: stop serving this connection


@dataclass
class Conn:
    index: int
    writer: asyncio.StreamWriter
    requests: list[Request] = field(default_factory=list)
    closed_by_peer: bool = False


class RawPeer:
    """A TCP server answering with scripted bytes; records connections and requests."""

    def __init__(self, script: Script, *, tls: ssl.SSLContext | None = None) -> None:
        self.script = script
        self.tls = tls
        self.conns: list[Conn] = []
        self.server: asyncio.Server | None = None
        self.port = 0

    async def __aenter__(self) -> RawPeer:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.tls)
        self.port = int(self.server.sockets[0].getsockname()[1])
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        for conn in self.conns:
            conn.writer.close()
        await self.server.wait_closed()

    def url(self, path: str = "/ocpi/x", host: str = "127.0.0.1") -> str:
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://{host}:{self.port}{path}"

    @property
    def requests(self) -> list[Request]:
        return [r for c in self.conns for r in c.requests]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = Conn(len(self.conns), writer)
        self.conns.append(conn)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")[:-2]
                request = Request(lines, b"")
                length = int(request.header("Content-Length") or 0)
                request.body = await reader.readexactly(length) if length else b""
                conn.requests.append(request)
                if not await self.script(conn, request):
                    break
                await writer.drain()
            writer.close()
        except (asyncio.IncompleteReadError, ConnectionError):
            conn.closed_by_peer = True
            writer.close()


def reply(body: bytes = OK, *, status: str = "200 OK", headers: tuple[str, ...] = ()) -> bytes:
    lines = [f"HTTP/1.1 {status}", "Content-Type: application/json", f"Content-Length: {len(body)}", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def always(raw: bytes) -> Script:
    async def script(conn: Conn, request: Request) -> bool:
        conn.writer.write(raw)
        return True

    return script


def client(transport: Transport, **kw: Any) -> PeerClient:
    return PeerClient(transport, connect_timeout=1.0, request_timeout=kw.pop("timeout", 2.0), allow_private_urls=True)


def on_both_loops(test: Callable[[Transport], Awaitable[None]]) -> Any:
    """Run the test on asyncio's loop and on uvloop's (`serve`'s; its transports are not asyncio's classes)."""

    @pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
    def run(loop: str) -> None:
        async def body() -> None:
            async with Transport(aiohttp.DefaultResolver()) as transport:
                await asyncio.wait_for(test(transport), 20)

        with asyncio.Runner(loop_factory=uvloop.new_event_loop if loop == "uvloop" else asyncio.new_event_loop) as r:
            r.run(body())

    run.__name__, run.__doc__ = test.__name__, test.__doc__
    return run


@on_both_loops
async def test_keep_alive_reuses_one_connection_and_sends_spec_shaped_requests(transport: Transport) -> None:
    async with RawPeer(always(reply())) as peer:
        peer_client = client(transport)
        for n in range(3):
            answer = await peer_client.send("PUT", peer.url(f"/ocpi/x/{n}"), token="tok", json_body={"n": n})
            assert answer.status == 200 and answer.ocpi_status == 1000
        post = await peer_client.send("POST", peer.url("/ocpi/empty"), token=None)
        assert post.ocpi_status == 1000
    assert len(peer.conns) == 1, "one keep-alive connection for every call"
    first = peer.requests[0]
    assert first.line == "PUT /ocpi/x/0 HTTP/1.1"
    assert first.header("Host") == f"127.0.0.1:{peer.port}"
    assert first.header("Authorization") == "Token dG9r"  # base64 of "tok"
    assert first.header("Content-Type") == "application/json"
    assert json.loads(first.body) == {"n": 0} and first.header("Content-Length") == str(len(first.body))
    assert first.header("X-Request-ID") and first.header("X-Correlation-ID")
    assert first.header("Cookie") is None and first.header("Expect") is None
    assert peer.requests[3].header("Content-Length") == "0"  # an empty POST still declares its length


@on_both_loops
async def test_chunked_gzip_deflate_and_until_close_answers_are_read_whole(transport: Transport) -> None:
    body = json.dumps({"status_code": 1000, "data": [{"id": str(i)} for i in range(200)]}).encode()
    gz, raw_deflate = gzip.compress(body), zlib.compress(body)[2:-4]
    half = len(body) // 2
    chunked = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        + f"{half:x}\r\n".encode()
        + body[:half]
        + b"\r\n"
        + f"{len(body) - half:x}\r\n".encode()
        + body[half:]
        + b"\r\n0\r\n\r\n"
    )
    answers = [
        chunked,
        reply(gz, headers=("Content-Encoding: gzip",)),
        reply(raw_deflate, headers=("Content-Encoding: deflate",)),
    ]

    async def script(conn: Conn, request: Request) -> bool:
        if answers:
            conn.writer.write(answers.pop(0))
            return True
        conn.writer.write(b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n" + body)
        return False  # the body ends with the connection

    async with RawPeer(script) as peer:
        for _ in range(4):
            answer = await transport.request("GET", URL(peer.url()), {}, None, total=2, connect=1, max_bytes=1 << 20)
            assert answer.status == 200 and answer.body == body
            assert "Content-Encoding" not in answer.headers  # what is handed on is the decoded body
        await transport.request("GET", URL(peer.url()), {}, None, total=2, connect=1, max_bytes=1 << 20)
    assert len(peer.conns) == 2, "the read-until-close connection is not reused"


@on_both_loops
async def test_interim_1xx_answers_are_skipped_for_the_final_one(transport: Transport) -> None:
    interim = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n"
    async with RawPeer(always(interim + reply())) as peer:
        answer = await client(transport).send("POST", peer.url(), token=None, json_body={})
    assert answer.status == 200 and answer.ocpi_status == 1000


@on_both_loops
async def test_an_idle_connection_closed_by_the_partner_resends_a_put_never_a_post(
    transport: Transport,
) -> None:
    # The partner closes each connection on its second request without a byte of answer: what a
    # server's keep-alive timeout looks like when it strikes as the hub reuses the connection.
    async def script(conn: Conn, request: Request) -> bool:
        if len(conn.requests) == 2:
            return False
        conn.writer.write(reply())
        return True

    async with RawPeer(script) as peer:
        peer_client = client(transport)
        await peer_client.send("PUT", peer.url("/a"), token=None, json_body={})
        put = await peer_client.send("PUT", peer.url("/b"), token=None, json_body={})
        assert put.ocpi_status == 1000  # sent again on a fresh connection: PUT is idempotent
        assert [r.line for r in peer.requests] == ["PUT /a HTTP/1.1", "PUT /b HTTP/1.1", "PUT /b HTTP/1.1"]
        with pytest.raises(ConnectionProblem, match="closed before any answer"):
            await peer_client.send("POST", peer.url("/c"), token=None, json_body={})  # never twice
    assert [r.line for r in peer.requests][3:] == ["POST /c HTTP/1.1"]


@on_both_loops
async def test_a_second_answer_nobody_asked_for_closes_the_connection(transport: Transport) -> None:
    async with RawPeer(always(reply() + reply(b'{"status_code":2001}'))) as peer:
        peer_client = client(transport)
        first = await peer_client.send("GET", peer.url(), token=None)
        second = await peer_client.send("GET", peer.url(), token=None)
    assert first.ocpi_status == second.ocpi_status == 1000  # the smuggled 2001 answered nothing
    assert len(peer.conns) == 2


@on_both_loops
async def test_header_injection_through_a_raw_token_is_refused_before_sending(transport: Transport) -> None:
    async with RawPeer(always(reply())) as peer:
        with pytest.raises(ConnectionProblem, match="line break"):
            await client(transport).send("GET", peer.url(), token="abc\r\nX-Evil: 1", send_base64=False)
        with pytest.raises(ConnectionProblem, match="line break"):
            await client(transport).send("GET", peer.url(), token=None, headers={"X-Request-ID": "a\nb"})
    assert peer.conns == []


@on_both_loops
async def test_hostile_heads_and_bodies_are_cut_off(transport: Transport) -> None:
    endless_head = b"HTTP/1.1 200 OK\r\n" + b"X-Pad: " + b"a" * 100_000 + b"\r\n\r\n"
    many = b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(500)) + b"Content-Length: 0\r\n\r\n"
    garbage = b"SMTP ready\r\n\r\n"
    for raw, reason in ((endless_head, "head is longer"), (many, "more than 128 headers"), (garbage, "valid HTTP")):
        async with RawPeer(always(raw)) as peer:
            with pytest.raises(ConnectionProblem, match=reason):
                await client(transport).send("GET", peer.url(), token=None)
    declared = b"HTTP/1.1 200 OK\r\nContent-Length: 999999999\r\n\r\n"
    chunked_big = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + (b"400\r\n" + b"x" * 1024 + b"\r\n") * 20
    for raw in (declared, chunked_big):
        async with RawPeer(always(raw)) as peer:
            with pytest.raises(BodyTooLarge):
                await transport.request("GET", URL(peer.url()), {}, None, total=2, connect=1, max_bytes=10_000)
            async with Transport(aiohttp.DefaultResolver()) as own:
                small = PeerClient(own, connect_timeout=1, request_timeout=2, allow_private_urls=True)
                small.max_answer_bytes = 10_000
                with pytest.raises(AnswerTooLarge):
                    await small.send("GET", peer.url(), token=None)


@on_both_loops
async def test_a_timeout_mid_answer_closes_the_connection(transport: Transport) -> None:
    async def script(conn: Conn, request: Request) -> bool:
        if conn.index == 0:
            conn.writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{")  # and nothing more
            return True
        conn.writer.write(reply())
        return True

    async with RawPeer(script) as peer:
        slow = client(transport, timeout=0.2)
        with pytest.raises(ReceiverTimeout):
            await slow.send("GET", peer.url(), token=None)
        await wait_for(lambda: peer.conns[0].closed_by_peer, what="the timed-out connection closed")
        assert (await slow.send("GET", peer.url(), token=None)).ocpi_status == 1000
    assert len(peer.conns) == 2


@on_both_loops
async def test_idle_connections_are_closed_after_the_keepalive(transport: Transport) -> None:
    async with Transport(aiohttp.DefaultResolver(), keepalive=0.05) as short:
        async with RawPeer(always(reply())) as peer:
            await short.request("GET", URL(peer.url()), {}, None, total=2, connect=1, max_bytes=1000)
            assert short.idle_connections == 1
            await wait_for(lambda: peer.conns[0].closed_by_peer, what="the idle connection closed by the hub")
            assert short.idle_connections == 0


@on_both_loops
async def test_idle_connections_over_all_partners_are_capped_least_recently_used_first(_: Transport) -> None:
    async with Transport(aiohttp.DefaultResolver(), max_idle=2) as capped:
        async with RawPeer(always(reply())) as a, RawPeer(always(reply())) as b, RawPeer(always(reply())) as c:
            for peer in (a, b, a, c):  # a's connection reused: b's is the least recently used
                await capped.request("GET", URL(peer.url()), {}, None, total=2, connect=1, max_bytes=1000)
            # Three partners, two idle connections kept: b's, the least recently used, was closed.
            assert capped.idle_connections == 2
            await wait_for(lambda: b.conns[0].closed_by_peer, what="b's idle connection closed by the hub")
            assert not a.conns[0].closed_by_peer and not c.conns[0].closed_by_peer
            for peer in (a, c):  # the kept ones are reused: no new connection
                await capped.request("GET", URL(peer.url()), {}, None, total=2, connect=1, max_bytes=1000)
            assert (len(a.conns), len(c.conns)) == (1, 1)
            await capped.request("GET", URL(b.url()), {}, None, total=2, connect=1, max_bytes=1000)
            assert len(b.conns) == 2 and capped.idle_connections == 2


@on_both_loops
async def test_tls_is_verified_against_the_trust_store(_: Transport) -> None:
    ca = trustme.CA()
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server_tls)
    trusting = ssl.create_default_context()
    ca.configure_trust(trusting)
    async with RawPeer(always(reply()), tls=server_tls) as peer:
        async with Transport(aiohttp.DefaultResolver(), ssl_context=trusting) as tls_transport:
            answer = await client(tls_transport).send("GET", peer.url(host="localhost"), token="t")
            assert answer.ocpi_status == 1000
            assert peer.requests[0].header("Authorization") == "Token dA=="
            with pytest.raises(ConnectionProblem, match="cannot connect"):  # the name is not on the certificate
                await client(tls_transport).send("GET", peer.url(), token="t")
        async with Transport(aiohttp.DefaultResolver()) as system_trust:  # the test CA is not trusted
            with pytest.raises(ConnectionProblem, match="cannot connect"):
                await client(system_trust).send("GET", peer.url(host="localhost"), token="t")
    assert len(peer.requests) == 1  # the refused handshakes sent no request


@on_both_loops
async def test_a_refused_scheme_or_connection_is_a_transport_error(transport: Transport) -> None:
    with pytest.raises(TransportError, match="not an HTTP URL"):
        await transport.request("GET", URL("ftp://127.0.0.1/x"), {}, None, total=1, connect=1, max_bytes=10)
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    with pytest.raises(ConnectionProblem, match="cannot connect"):
        await client(transport).send("GET", f"http://127.0.0.1:{port}/x", token=None)


@on_both_loops
async def test_a_keep_alive_timeout_the_partner_announces_is_respected(_: Transport) -> None:
    now = [1000.0]
    async with Transport(aiohttp.DefaultResolver(), monotonic=lambda: now[0]) as clocked:
        announced = always(reply(headers=("Keep-Alive: timeout=5, max=100",)))
        async with RawPeer(announced) as peer:
            call = functools.partial(clocked.request, "GET", URL(peer.url()), {}, None, total=2, connect=1)
            await call(max_bytes=1000)
            now[0] += 3.5  # within the partner's 5 s, less the hub's second of margin
            await call(max_bytes=1000)
            assert len(peer.conns) == 1
            now[0] += 4.5  # the partner may be closing it right now: a new connection
            await call(max_bytes=1000)
            assert len(peer.conns) == 2
        async with RawPeer(always(reply())) as quiet:  # nothing announced: the hub's own 15 s
            await clocked.request("GET", URL(quiet.url()), {}, None, total=2, connect=1, max_bytes=1000)
            now[0] += 10
            await clocked.request("GET", URL(quiet.url()), {}, None, total=2, connect=1, max_bytes=1000)
            assert len(quiet.conns) == 1
