"""vault.daemon.guard: a declared Content-Length above the limit is refused before a byte of
the body is read, over a real socket and at the ASGI boundary."""

from __future__ import annotations

import asyncio
import json
import socket

from starlette.types import Message, Receive, Scope, Send

from vault.daemon.guard import LOOPBACK_HOSTS, GuardMiddleware

from .conftest import Served

LIMIT = 16_384
LYING_LENGTH = b"1000000000"


def _raw_exchange(served: Served, request: bytes) -> tuple[bytes, dict[str, str]]:
    """Send ``request`` and read one response while keeping the connection open: the
    status line and the JSON body. A server that waits for the declared body never
    answers, and the socket timeout fails the test."""
    host, port = served.base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=20) as sock:
        sock.sendall(request)
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(4096)
            assert chunk, f"connection closed without a response: {answer!r}"
            answer += chunk
        head, _, body = answer.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        headers = dict(line.decode().lower().split(": ", 1) for line in lines[1:])
        while len(body) < int(headers["content-length"]):
            chunk = sock.recv(4096)
            assert chunk
            body += chunk
    return lines[0], json.loads(body)


def test_a_lying_content_length_is_413_before_the_body_arrives(daemon: Served) -> None:
    """THREATS row 24: Content-Length claims 1 GB; the two bytes sent (or none at all) are
    never waited for: the 413 comes back on the open connection."""
    port = daemon.base.rsplit(":", 1)[1]
    for body in (b"{}", b""):
        request = (
            b"POST /v1/release HTTP/1.1\r\nHost: 127.0.0.1:" + port.encode() + b"\r\n"
            b"Content-Type: application/json\r\nContent-Length: " + LYING_LENGTH + b"\r\n\r\n"
            + body
        )
        status, error = _raw_exchange(daemon, request)
        assert b" 413 " in status + b" ", status
        assert error["error"] == "too_large"
    # The daemon still answers afterwards.
    assert daemon.get("/v1/health").status_code == 200


def _asgi(scope_headers: list[tuple[bytes, bytes]]) -> tuple[list[Message], int, bool]:
    """Run the guard around an app that reads the whole body; what was sent, how often
    ``receive`` was called and whether the app ran."""
    sent: list[Message] = []
    received = 0
    app_ran = False

    async def receive() -> Message:
        nonlocal received
        received += 1
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        nonlocal app_ran
        app_ran = True
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    guard = GuardMiddleware(app, allowed_hosts=LOOPBACK_HOSTS, max_body=LIMIT)
    scope = {"type": "http", "method": "POST", "path": "/v1/release",
             "headers": scope_headers}
    asyncio.run(guard(scope, receive, send))
    return sent, received, app_ran


def test_declared_length_over_the_limit_never_calls_receive() -> None:
    """THREATS row 24, at the ASGI boundary: the refusal is decided from the header alone."""
    sent, received, app_ran = _asgi(
        [(b"host", b"127.0.0.1"), (b"content-length", LYING_LENGTH)]
    )
    assert sent[0]["status"] == 413
    assert json.loads(sent[1]["body"])["error"] == "too_large"
    assert received == 0 and not app_ran


def test_declared_length_at_the_limit_reaches_the_app() -> None:
    sent, received, app_ran = _asgi(
        [(b"host", b"127.0.0.1"), (b"content-length", str(LIMIT).encode()),
         (b"content-type", b"application/json")]
    )
    assert sent[0]["status"] == 200 and received == 1 and app_ran


def test_malformed_content_length_is_400_unread() -> None:
    sent, received, app_ran = _asgi([(b"host", b"localhost"), (b"content-length", b"12x")])
    assert sent[0]["status"] == 400 and received == 0 and not app_ran


def test_unknown_host_is_403_before_the_app_runs() -> None:
    """THREATS row 27: DNS rebinding."""
    for host in (b"evil.example", b"localhost.evil.example:80", b""):
        sent, received, app_ran = _asgi([(b"host", host), (b"content-length", b"2")])
        assert sent[0]["status"] == 403, host
        assert json.loads(sent[1]["body"])["error"] == "forbidden_host"
        assert received == 0 and not app_ran
