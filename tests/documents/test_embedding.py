"""Embedding backends: WordLlama locally, and an OpenAI-compatible API served on loopback."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import numpy as np
import pytest

from workers.errors import PermanentError, TransientError
from workers.lib.embedding import OpenAICompatibleBackend, WordLlamaBackend, get_backend


def test_wordllama_gives_normalised_256_dimension_vectors():
    vectors = WordLlamaBackend().embed(["the cat sat on the mat", "quarterly tax filing"])

    assert vectors.shape == (2, 256)
    assert vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_wordllama_scores_similar_texts_higher_than_unrelated_ones():
    query, similar, unrelated = WordLlamaBackend().embed(
        ["how do I brew green tea", "steeping green tea leaves in hot water", "postgres database backup with pg_dump"]
    )

    assert float(query @ similar) > float(query @ unrelated)


def test_the_backend_follows_the_setting(settings):
    settings.GREENROOM_EMBEDDING_BACKEND = "wordllama"
    assert get_backend().name == "wordllama"
    settings.GREENROOM_EMBEDDING_BACKEND = "nonsense"
    with pytest.raises(PermanentError, match="nonsense"):
        get_backend()


# --- OpenAI-compatible API on a real loopback server --------------------------------------------------


@pytest.fixture
def embedding_server() -> Iterator[Callable[[Callable[[dict[str, Any]], tuple[int, Any]]], str]]:
    """`serve(answer)`: a loopback HTTP server whose answer to a POST is `answer(request) -> (status, body)`."""
    servers: list[ThreadingHTTPServer] = []

    def serve(answer: Callable[[dict[str, Any]], tuple[int, Any]]) -> str:
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                status, payload = answer({"path": self.path, "auth": self.headers.get("Authorization"), **body})
                raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()


def backend(url: str) -> OpenAICompatibleBackend:
    return OpenAICompatibleBackend(base_url=url, model="tiny", api_key="sekret", timeout=httpx.Timeout(5.0))


def test_openai_backend_posts_inputs_and_normalises_the_answer(embedding_server):
    seen = {}

    def answer(request):
        seen.update(request)
        data = [{"index": i, "embedding": [3.0, 4.0] if i == 0 else [0.0, 2.0]} for i in range(len(request["input"]))]
        return 200, {"data": list(reversed(data))}  # out of order on purpose

    vectors = backend(embedding_server(answer)).embed(["a", "b"])

    assert seen["path"] == "/v1/embeddings"
    assert seen["auth"] == "Bearer sekret"
    assert seen["model"] == "tiny"
    assert seen["input"] == ["a", "b"]
    assert np.allclose(vectors, [[0.6, 0.8], [0.0, 1.0]])


def test_openai_backend_server_error_is_transient(embedding_server):
    url = embedding_server(lambda request: (500, {"error": "overloaded"}))

    with pytest.raises(TransientError, match="500"):
        backend(url).embed(["a"])


def test_openai_backend_rate_limit_is_transient(embedding_server):
    url = embedding_server(lambda request: (429, {"error": "slow down"}))

    with pytest.raises(TransientError, match="429"):
        backend(url).embed(["a"])


def test_openai_backend_unauthorised_is_permanent(embedding_server):
    url = embedding_server(lambda request: (401, {"error": "bad key"}))

    with pytest.raises(PermanentError, match="401"):
        backend(url).embed(["a"])


@pytest.mark.parametrize("body", [b"not json", {"data": "nope"}, {"data": [{"index": 0}]}, {"data": []}])
def test_openai_backend_malformed_answer_is_permanent(embedding_server, body):
    url = embedding_server(lambda request: (200, body))

    with pytest.raises(PermanentError, match="malformed"):
        backend(url).embed(["a"])


def test_openai_backend_unreachable_server_is_transient(embedding_server):
    url = embedding_server(lambda request: (200, {}))
    port = url.rsplit(":", 1)[1]
    with pytest.raises(TransientError, match="unreachable"):
        # Nothing listens on port 1 of loopback: connection refused.
        backend(url.replace(port, "1")).embed(["a"])
