"""Text embeddings behind one small interface: WordLlama (local, default) or an OpenAI-compatible API.

    backend = get_backend()          # chosen by GREENROOM_EMBEDDING_BACKEND
    vectors = backend.embed(["a", "b"])   # float32 array (2, backend.dim), rows L2-normalised

Plain functions and classes: no Dramatiq. Errors of a remote API are TransientError (timeouts,
connection, 5xx, 429: worth retrying) or PermanentError (other 4xx, a malformed answer).
"""

from __future__ import annotations

import os
import threading
from typing import Any, Protocol

import httpx
import numpy as np
from django.conf import settings

from workers.errors import PermanentError, TransientError

# Timeouts of the embedding API (seconds): connecting should be quick; embedding a batch may not be.
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 60.0
# The WordLlama model shipped in the wheel (256 dimensions of the 'l2_supercat' model).
WORDLLAMA_DIM = 256


class EmbeddingBackend(Protocol):
    """Turns texts into L2-normalised float32 vectors of `dim` dimensions."""

    name: str
    dim: int

    def embed(self, texts: list[str]) -> np.ndarray: ...


def normalise(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero), as float32."""
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim != 2:
        raise ValueError(f"expected a 2-D array of vectors, got shape {vectors.shape}")
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)


_wordllama: Any = None
_wordllama_lock = threading.Lock()


def _load_wordllama() -> Any:
    """The WordLlama model, loaded once per process (~1 s) from the weights inside the wheel."""
    global _wordllama
    with _wordllama_lock:
        if _wordllama is None:
            import wordllama
            from wordllama import WordLlama

            # Without these two, its loader looks in a cache folder and tries to download.
            _wordllama = WordLlama.load(cache_dir=os.path.dirname(wordllama.__file__), disable_download=True)
        return _wordllama


class WordLlamaBackend:
    """Static word embeddings computed locally: fast, offline, modest quality."""

    name = "wordllama"
    dim = WORDLLAMA_DIM

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return normalise(_load_wordllama().embed(list(texts)))


class OpenAICompatibleBackend:
    """`POST {base_url}/v1/embeddings` of an OpenAI-compatible server (OpenAI, vLLM, Ollama, ...)."""

    name = "openai"

    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        api_key: str = "",
        dim: int = 0,
        timeout: httpx.Timeout | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not base_url:
            raise PermanentError("GREENROOM_EMBEDDING_URL is not set (needed by the 'openai' embedding backend)")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.dim = dim  # 0: learnt from the first answer
        self._api_key = api_key
        self._timeout = timeout or httpx.Timeout(READ_TIMEOUT, connect=CONNECT_TIMEOUT)
        self._transport = transport

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        body = {"model": self.model, "input": list(texts)}
        try:
            with httpx.Client(timeout=self._timeout, transport=self._transport) as client:
                response = client.post(f"{self.base_url}/v1/embeddings", json=body, headers=headers)
        except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as exc:
            raise TransientError(f"embedding API unreachable: {type(exc).__name__}: {exc}") from exc
        except httpx.HTTPError as exc:
            raise PermanentError(f"embedding API request failed: {type(exc).__name__}: {exc}") from exc
        if response.status_code == 429 or response.status_code >= 500:
            raise TransientError(f"embedding API answered {response.status_code}: {_excerpt(response)}")
        if response.status_code >= 400:
            raise PermanentError(f"embedding API refused the request ({response.status_code}): {_excerpt(response)}")
        vectors = self._parse(response, len(texts))
        if not self.dim:
            self.dim = vectors.shape[1]
        elif vectors.shape[1] != self.dim:
            raise PermanentError(f"embedding API returned {vectors.shape[1]} dimensions, expected {self.dim}")
        return normalise(vectors)

    def _parse(self, response: httpx.Response, count: int) -> np.ndarray:
        try:
            data = response.json()["data"]
            # The API may answer out of order; each item carries the index of its input.
            rows = sorted(data, key=lambda item: item["index"])
            vectors = np.array([row["embedding"] for row in rows], dtype=np.float32)
        except (ValueError, KeyError, TypeError) as exc:
            raise PermanentError(f"malformed answer from the embedding API: {type(exc).__name__}: {exc}") from exc
        if vectors.ndim != 2 or vectors.shape[0] != count or vectors.shape[1] == 0:
            raise PermanentError(f"malformed answer from the embedding API: {count} inputs, shape {vectors.shape}")
        if not np.isfinite(vectors).all():
            raise PermanentError("malformed answer from the embedding API: non-finite numbers")
        return vectors


def _excerpt(response: httpx.Response) -> str:
    # The body, shortened: enough to read the server's reason, never the request (it holds the key).
    return response.text[:200].replace("\n", " ")


def get_backend() -> EmbeddingBackend:
    """The backend chosen by GREENROOM_EMBEDDING_BACKEND ("wordllama" or "openai")."""
    kind = getattr(settings, "GREENROOM_EMBEDDING_BACKEND", "wordllama")
    if kind == "wordllama":
        return WordLlamaBackend()
    if kind == "openai":
        return OpenAICompatibleBackend(
            base_url=getattr(settings, "GREENROOM_EMBEDDING_URL", ""),
            model=getattr(settings, "GREENROOM_EMBEDDING_MODEL", "text-embedding-3-small"),
            api_key=getattr(settings, "GREENROOM_EMBEDDING_API_KEY", ""),
            dim=getattr(settings, "GREENROOM_EMBEDDING_DIM", 0),
        )
    raise PermanentError(f"unknown GREENROOM_EMBEDDING_BACKEND {kind!r} (use 'wordllama' or 'openai')")


def vector_to_bytes(vector: np.ndarray) -> bytes:
    """A vector as float32 bytes, for a BinaryField."""
    return np.asarray(vector, dtype=np.float32).tobytes()


def vector_from_bytes(data: bytes | memoryview) -> np.ndarray:
    return np.frombuffer(bytes(data), dtype=np.float32)
