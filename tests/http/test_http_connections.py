"""Issue 10, item 5: a real ``tradebook serve`` closes connections that never finish a request head, caps its
connections, and keeps answering ``/health`` at the cap. Raw sockets, short limits, bounded in time."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from _http_support import SECRET

from tradebook.http import ServerConfig, load_config
from tradebook.http.connections import guarded_protocol

HEADER_TIMEOUT = 2.0
MAX_CONNECTIONS = 8


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    """``tradebook serve`` on a free loopback port with a 2 s head deadline and 8 connections."""
    tmp_path = tmp_path_factory.mktemp("connections")
    log_path = tmp_path / "server.log"
    env = {**os.environ, "TRADEBOOK_AUTH_SECRET": SECRET, "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "tradebook", "serve", "--database", "memory", "--port", "0", "--no-access-log"]
    command += ["--header-timeout", str(HEADER_TIMEOUT), "--max-connections", str(MAX_CONNECTIONS)]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 60
        while True:
            match = re.search(r"running on http://127\.0\.0\.1:(\d+)", log_path.read_text())
            if match:
                break
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"the server did not start:\n{log_path.read_text()}")
            time.sleep(0.05)
        yield "127.0.0.1", int(match.group(1))
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:  # pragma: no cover - a hung server
            process.kill()
            process.wait()


def connect(address: tuple[str, int]) -> socket.socket:
    sock = socket.create_connection(address, timeout=10)
    return sock


def closed_by_server(sock: socket.socket, within: float) -> bool:
    """True when the server closes ``sock`` within ``within`` seconds (what it sent before is skipped)."""
    sock.settimeout(within)
    try:
        while sock.recv(65536):
            pass
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True
    return True


def request(sock: socket.socket, path: str, extra: str = "") -> bytes:
    """Send ``GET path`` and read one whole response (headers and Content-Length body)."""
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\n{extra}\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = re.search(rb"(?i)content-length: (\d+)", head)
    while length and len(body) < int(length.group(1)):
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


def status(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


def test_idle_and_partial_head_connections_are_closed_after_the_header_timeout(server: tuple[str, int]) -> None:
    idle = [connect(server) for _ in range(3)]
    partial = [connect(server) for _ in range(3)]
    for sock in partial:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: t\r\nX-Slow: ")
    start = time.monotonic()
    # A slow-loris trickle does not extend the deadline: it is counted from the connection's opening.
    trickle = connect(server)
    trickle.sendall(b"GET /health HTTP/1.1\r\n")
    for _ in range(3):
        time.sleep(HEADER_TIMEOUT / 4)
        try:
            trickle.sendall(b"X-A: b\r\n")
        except OSError:  # pragma: no cover - already closed
            break
    for sock in [*idle, *partial, trickle]:
        assert closed_by_server(sock, within=HEADER_TIMEOUT + 5), "a connection outlived the header timeout"
        sock.close()
    assert time.monotonic() - start < HEADER_TIMEOUT + 8


def test_keep_alive_requests_still_work_and_the_deadline_restarts_after_each_response(
    server: tuple[str, int],
) -> None:
    with connect(server) as sock:
        for _ in range(3):
            assert status(request(sock, "/health")) == 200
            time.sleep(HEADER_TIMEOUT / 2)  # idle between requests, but within the deadline each time
        sock.sendall(b"GET /health HTTP/1.1\r\n")  # then a head that never ends
        assert closed_by_server(sock, within=HEADER_TIMEOUT + 5)


def test_at_the_connection_cap_health_still_answers_and_other_requests_get_503(server: tuple[str, int]) -> None:
    holders = [connect(server) for _ in range(MAX_CONNECTIONS)]
    try:
        for sock in holders:  # each completes a request, so the head deadline does not free it
            assert status(request(sock, "/health")) == 200
        with connect(server) as extra:
            response = request(extra, "/health")
            assert status(response) == 200 and b'"status":"ok"' in response
            assert b"connection: close" in response.lower()
            assert closed_by_server(extra, within=5)  # one answer, then closed
        with connect(server) as extra:
            response = request(extra, "/api/v1/balances", "Authorization: Bearer x\r\n")
            assert status(response) == 503 and b'"code":"service_unavailable"' in response
            assert b"retry-after: 1" in response.lower()
            assert closed_by_server(extra, within=5)
        for sock in holders:  # the admitted connections are served as before
            assert status(request(sock, "/health")) == 200
    finally:
        for sock in holders:
            sock.close()
    time.sleep(0.3)  # the server sees the closes
    with connect(server) as sock:  # below the cap again: served normally, kept alive
        assert status(request(sock, "/api/v1/balances", "Authorization: Bearer x\r\n")) == 401
        assert status(request(sock, "/health")) == 200


def test_an_anonymous_large_body_is_refused_with_401_over_a_real_socket(server: tuple[str, int]) -> None:
    with connect(server) as sock:
        head = "POST /api/v1/orders HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 70000\r\n"
        sock.sendall(head.encode() + b"\r\n" + b"{" * 1000)  # and the rest never comes
        sock.settimeout(5)
        data = sock.recv(65536)
        assert status(data) == 401 and b"connection: close" in data.lower()
        assert closed_by_server(sock, within=5)


def test_the_settings(tmp_path: Path) -> None:
    assert (ServerConfig().header_timeout, ServerConfig().max_connections) == (10.0, 1000)
    path = tmp_path / "c.toml"
    path.write_text("[server]\nheader_timeout = 2.5\nmax_connections = 50\n")
    config = load_config(path)
    assert (config.header_timeout, config.max_connections) == (2.5, 50)
    for bad in ({"header_timeout": 0}, {"max_connections": 0}, {"header_timeout": True}):
        with pytest.raises(ValueError):
            ServerConfig(**bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        guarded_protocol(object, header_timeout=0, max_connections=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        guarded_protocol(object, header_timeout=1, max_connections=0)  # type: ignore[arg-type]


@pytest.fixture(params=["h11", "httptools"])
def in_process(request: pytest.FixtureRequest) -> Iterator[tuple[str, int]]:
    """The guards over each of uvicorn's HTTP implementations, in this process (0.5 s deadline, 2 connections)."""
    import threading

    import uvicorn
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def ok(request: object) -> PlainTextResponse:
        return PlainTextResponse("ok")

    app = Starlette(routes=[Route("/health", ok), Route("/other", ok)])
    from uvicorn.protocols.http.h11_impl import H11Protocol
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    base: type = H11Protocol if request.param == "h11" else HttpToolsProtocol
    protocol = guarded_protocol(base, header_timeout=0.5, max_connections=2)
    assert protocol.__name__ == f"Guarded{base.__name__}"
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, http=protocol, log_config=None, lifespan="off", loop="asyncio"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        yield sock.getsockname()
    finally:
        server.should_exit = True
        thread.join(10)


def test_the_guards_on_both_uvicorn_implementations(in_process: tuple[str, int]) -> None:
    with connect(in_process) as partial:
        partial.sendall(b"GET /health HTTP/1.1\r\nHost: t\r\n")
        assert closed_by_server(partial, within=5)
    with connect(in_process) as first, connect(in_process) as second:
        for sock in (first, second):
            assert status(request(sock, "/other")) == 200
        with connect(in_process) as extra:
            assert status(request(extra, "/health")) == 200
            assert closed_by_server(extra, within=5)
        with connect(in_process) as extra:
            assert status(request(extra, "/other")) == 503
            assert closed_by_server(extra, within=5)
        # Pipelined: two requests in one write; the deadline must not cut the second one's answer.
        first.sendall(b"GET /other HTTP/1.1\r\nHost: t\r\n\r\nGET /other HTTP/1.1\r\nHost: t\r\n\r\n")
        time.sleep(0.2)
        first.settimeout(5)
        data = b""
        while data.count(b"HTTP/1.1 200") < 2:
            chunk = first.recv(65536)
            assert chunk, data
            data += chunk
        assert closed_by_server(second, within=5)  # idle past the deadline
