"""A real OpenAI-compatible HTTP server on loopback whose answers each test scripts."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

KEY = "sk-test-4f9c2a7e1b3d5c6a8e0f1234abcd"


@dataclass
class Reply:
    """One scripted answer; `body` may be a dict/list (sent as JSON), str or bytes."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    echo_auth: bool = False  # put the request's Authorization header in the body (a leaky server)


def models_reply(*ids: str) -> Reply:
    return Reply(body={"object": "list", "data": [{"id": i, "object": "model"} for i in ids]})


@dataclass
class Seen:
    path: str
    authorization: str | None
    at: float  # time.time() when the request arrived


class FakeLlmServer:
    """ThreadingHTTPServer on 127.0.0.1:<free port>: scripted replies first, then `default`."""

    def __init__(self) -> None:
        self.default = models_reply("gpt-test-a", "gpt-test-b")
        self.script: deque[Reply] = deque()
        self.requests: list[Seen] = []
        self.release = threading.Event()  # ends slow replies at teardown
        self._lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.handle_error = lambda request, client_address: None  # type: ignore[method-assign]
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def then(self, *replies: Reply) -> FakeLlmServer:
        self.script.extend(replies)
        return self

    def _next(self, seen: Seen) -> Reply:
        with self._lock:
            self.requests.append(seen)
            return self.script.popleft() if self.script else self.default

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                auth = self.headers.get("Authorization")
                reply = server._next(Seen(path=self.path, authorization=auth, at=time.time()))
                if self.path != "/v1/models":
                    reply = Reply(status=404, body={"error": "not found"})
                if reply.delay:
                    server.release.wait(reply.delay)
                body = reply.body
                if reply.echo_auth:
                    body = {"error": {"message": f"Incorrect API key provided: {auth}"}}
                if isinstance(body, dict | list):
                    raw = json.dumps(body).encode()
                elif isinstance(body, str):
                    raw = body.encode()
                else:
                    raw = body or b""
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet: pytest shows stderr of failing tests

        return Handler

    def start(self) -> FakeLlmServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()  # joins the handler threads
        self._thread.join(5)


@pytest.fixture
def llm_servers() -> Iterator[Callable[[], FakeLlmServer]]:
    """`llm_servers()`: start another fake server; all are stopped after the test."""
    started: list[FakeLlmServer] = []

    def make() -> FakeLlmServer:
        server = FakeLlmServer().start()
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


@pytest.fixture
def llm_server(llm_servers: Callable[[], FakeLlmServer]) -> FakeLlmServer:
    return llm_servers()


@pytest.fixture
def closed_port_url() -> str:
    """A loopback URL on which nothing listens (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
