"""Validate an OpenAI-compatible LLM API: list its models (`GET {base_url}/v1/models`).

Plain functions, no Dramatiq and no models, so they test against any HTTP server. Failures are
classified for the job system: `TransientError` (timeouts, connection errors, 5xx, 429 — with the
server's Retry-After carried on the error) is worth retrying, `PermanentError` (401, 403, 404, other
4xx, a body that is not the expected JSON) is not. No message ever contains the API key: the key only
goes into the Authorization header, and any response text quoted in a message is redacted first.
"""

from __future__ import annotations

import email.utils
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from workers.errors import PermanentError, TransientError

# Seconds to open the TCP (and TLS) connection: an unreachable host should fail fast.
CONNECT_TIMEOUT = 5.0
# Seconds between two chunks of the response: listing models is cheap, a server this slow is unwell.
READ_TIMEOUT = 15.0
# Seconds to send the request: a GET with a few headers.
WRITE_TIMEOUT = 5.0
# Seconds to wait for a free connection from the pool (one request per client: never long).
POOL_TIMEOUT = 5.0
DEFAULT_TIMEOUT = httpx.Timeout(connect=CONNECT_TIMEOUT, read=READ_TIMEOUT, write=WRITE_TIMEOUT, pool=POOL_TIMEOUT)
# One request per validation, so one connection and nothing kept alive.
LIMITS = httpx.Limits(max_connections=1, max_keepalive_connections=0)
# Largest response body read (bytes): a model list is a few KiB; a huge body is not a model list.
MAX_BODY_BYTES = 5 * 1024 * 1024
# Longest model id kept (LlmModel.model_id has the same length).
MODEL_ID_MAX_LENGTH = 255
# Characters of a response body quoted in an error message (redacted), to help the operator.
BODY_SNIPPET = 200


@dataclass(frozen=True)
class ModelListing:
    """What one successful call returned."""

    latency_ms: int
    model_ids: list[str]


def models_url(base_url: str) -> str:
    """`…/v1/models` for a base URL given with or without its `/v1` (and trailing slashes)."""
    base = base_url.strip().rstrip("/")
    if base.endswith("/v1"):
        return f"{base}/models"
    return f"{base}/v1/models"


def display_url(url: str) -> str:
    """`url` without user info, query or fragment: safe to show in messages and logs."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        return "<invalid URL>"
    return str(parsed.copy_with(userinfo=b"", query=None, fragment=None))


def mask_key(key: str) -> str:
    """A hint of a key that cannot be used to recover it: `sk-…abcd` (or `…` for short keys)."""
    if not key:
        return ""
    if len(key) < 12:
        return "…"
    prefix = key[:3] if key[:3].isalpha() or key.startswith("sk-") else ""
    return f"{prefix}…{key[-4:]}"


def redact(text: str, key: str) -> str:
    """`text` with every occurrence of `key` replaced by its masked hint."""
    return text.replace(key, mask_key(key) or "…") if key else text


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delay-seconds or HTTP-date), or None if unusable."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(int(value))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # HTTP-dates are GMT
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def list_models(
    *,
    base_url: str,
    api_key: str,
    timeout: httpx.Timeout | None = None,
    transport: httpx.BaseTransport | None = None,
) -> ModelListing:
    """Call `GET {base_url}/v1/models`; return the latency and the model ids.

    Raises TransientError (worth retrying; `retry_after_ms` set when the server said how long to
    wait) or PermanentError (fix the URL, the key or the server first). `transport` replaces the
    network in tests.
    """
    url = models_url(base_url)
    shown = display_url(url)
    try:
        scheme = httpx.URL(url).scheme
    except httpx.InvalidURL:
        raise PermanentError(f"LLM API base URL is not a valid URL: {shown}") from None
    if scheme not in ("http", "https"):
        raise PermanentError(f"LLM API base URL must start with http:// or https://: {shown}")
    headers = {"Accept": "application/json"}
    if api_key:
        # Checked here: httpx would otherwise refuse the header with an error quoting its value.
        if not api_key.isascii() or not api_key.isprintable() or api_key != api_key.strip():
            raise PermanentError("the stored API key contains characters not allowed in an HTTP header")
        headers["Authorization"] = f"Bearer {api_key}"
    started = time.perf_counter()
    try:
        with (
            httpx.Client(
                timeout=timeout or DEFAULT_TIMEOUT, limits=LIMITS, transport=transport, follow_redirects=False
            ) as client,
            client.stream("GET", url, headers=headers) as response,
        ):
            body = _read_capped(response, shown)
    except httpx.TimeoutException as exc:
        raise TransientError(f"LLM API at {shown} timed out ({type(exc).__name__})") from None
    except (httpx.UnsupportedProtocol, httpx.LocalProtocolError, httpx.InvalidURL) as exc:
        raise PermanentError(f"LLM API at {shown} cannot be called: {type(exc).__name__}") from None
    except httpx.TransportError as exc:
        raise TransientError(f"could not reach LLM API at {shown}: {type(exc).__name__}: {redact(str(exc), api_key)}") \
            from None
    latency_ms = round((time.perf_counter() - started) * 1000)
    _raise_for_status(response, body, shown=shown, api_key=api_key)
    return ModelListing(latency_ms=latency_ms, model_ids=_model_ids(body, shown=shown))


def _read_capped(response: httpx.Response, shown: str) -> bytes:
    chunks, size = [], 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise PermanentError(f"LLM API at {shown} sent more than {MAX_BODY_BYTES} bytes; not a model list")
        chunks.append(chunk)
    return b"".join(chunks)


def _snippet(body: bytes, api_key: str) -> str:
    text = body[: BODY_SNIPPET * 4].decode("utf-8", errors="replace")
    text = " ".join(redact(text, api_key).split())
    return text[:BODY_SNIPPET]


def _raise_for_status(response: httpx.Response, body: bytes, *, shown: str, api_key: str) -> None:
    status = response.status_code
    if 200 <= status < 300:
        return
    what = f"{status} {response.reason_phrase}".strip()
    detail = _snippet(body, api_key)
    said = f": {detail}" if detail else ""
    if status == 429 or status >= 500:
        wait = parse_retry_after(response.headers.get("Retry-After"))
        later = f" (retry after {wait:.0f} s)" if wait is not None else ""
        raise TransientError(f"LLM API at {shown} answered {what}{later}{said}", retry_after=wait)
    if status == 401:
        raise PermanentError(f"LLM API at {shown} refused the API key ({what}){said}")
    if status == 403:
        raise PermanentError(f"LLM API at {shown} does not allow this key to list models ({what}){said}")
    if status == 404:
        raise PermanentError(f"LLM API has no models endpoint at {shown} ({what}): check the base URL")
    if 300 <= status < 400:
        location = display_url(response.headers.get("Location", ""))
        raise PermanentError(f"LLM API at {shown} redirects ({what}) to {location}: use that as the base URL")
    raise PermanentError(f"LLM API at {shown} answered {what}{said}")


def _model_ids(body: bytes, *, shown: str) -> list[str]:
    try:
        payload: Any = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise PermanentError(f"LLM API at {shown} did not answer with JSON") from None
    data = payload.get("data") if isinstance(payload, dict) else None
    if not isinstance(data, list):
        raise PermanentError(f"LLM API at {shown} answered JSON without a 'data' list of models")
    ids: dict[str, None] = {}  # ordered and without duplicates
    for item in data:
        model_id = item.get("id") if isinstance(item, dict) else None
        if not isinstance(model_id, str) or not model_id.strip() or len(model_id) > MODEL_ID_MAX_LENGTH:
            raise PermanentError(f"LLM API at {shown} listed a model without a usable 'id'")
        ids[model_id.strip()] = None
    return list(ids)
