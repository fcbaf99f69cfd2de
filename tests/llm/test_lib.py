"""workers.lib.llm against a real HTTP server: models listed, every failure classified, the key kept out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from tests.llm.conftest import KEY, Reply, models_reply
from workers.errors import PermanentError, TransientError
from workers.lib.llm import list_models, mask_key, models_url, parse_retry_after, redact

FAST = httpx.Timeout(connect=1.0, read=0.3, write=1.0, pool=1.0)


def call(base_url: str, key: str = KEY) -> object:
    return list_models(base_url=base_url, api_key=key, timeout=FAST)


def failure(kind: type[Exception], base_url: str, key: str = KEY) -> Exception:
    with pytest.raises(kind) as raised:
        call(base_url, key)
    message = str(raised.value)
    assert key not in message
    return raised.value


# --- success ----------------------------------------------------------------------------------------


def test_models_are_listed_with_latency_and_the_bearer_key(llm_server):
    llm_server.default = models_reply("m-1", "m-2", "m-1")

    listing = list_models(base_url=llm_server.url, api_key=KEY, timeout=FAST)

    assert listing.model_ids == ["m-1", "m-2"]  # duplicates dropped, order kept
    assert 0 <= listing.latency_ms < 1000
    assert llm_server.requests[0].path == "/v1/models"
    assert llm_server.requests[0].authorization == f"Bearer {KEY}"


@pytest.mark.parametrize("suffix", ["", "/", "/v1", "/v1/", "/v1//"])
def test_base_url_works_with_or_without_v1(llm_server, suffix):
    listing = list_models(base_url=llm_server.url + suffix, api_key=KEY, timeout=FAST)

    assert listing.model_ids == ["gpt-test-a", "gpt-test-b"]
    assert llm_server.requests[-1].path == "/v1/models"


def test_models_url_appends_v1_models_once():
    assert models_url("https://api.example/v1") == "https://api.example/v1/models"
    assert models_url("https://api.example/") == "https://api.example/v1/models"
    assert models_url(" https://api.example/openai/v1/ ") == "https://api.example/openai/v1/models"


def test_no_key_sends_no_authorization_header(llm_server):
    list_models(base_url=llm_server.url, api_key="", timeout=FAST)

    assert llm_server.requests[0].authorization is None


def test_a_swapped_transport_replaces_the_network():
    def answer(request: httpx.Request) -> httpx.Response:
        assert request.headers["Authorization"] == f"Bearer {KEY}"
        return httpx.Response(200, json={"data": [{"id": "mocked"}]})

    listing = list_models(base_url="https://nowhere.invalid/v1", api_key=KEY, transport=httpx.MockTransport(answer))

    assert listing.model_ids == ["mocked"]


# --- permanent failures -----------------------------------------------------------------------------


def test_401_is_permanent_and_the_echoed_key_is_redacted(llm_server):
    llm_server.default = Reply(status=401, echo_auth=True)

    error = failure(PermanentError, llm_server.url)

    assert "refused the API key" in str(error) and "401" in str(error)
    assert "Incorrect API key provided: Bearer sk-…abcd" in str(error)


def test_403_is_permanent(llm_server):
    llm_server.default = Reply(status=403, body={"error": "forbidden"})

    assert "403" in str(failure(PermanentError, llm_server.url))


def test_404_is_permanent_and_points_at_the_base_url(llm_server):
    error = failure(PermanentError, llm_server.url + "/wrong/prefix")

    assert "404" in str(error) and "check the base URL" in str(error)


def test_other_4xx_is_permanent(llm_server):
    llm_server.default = Reply(status=400, body={"error": "bad request"})

    assert "400 Bad Request" in str(failure(PermanentError, llm_server.url))


def test_malformed_json_is_permanent(llm_server):
    llm_server.default = Reply(body="{not json")

    assert "did not answer with JSON" in str(failure(PermanentError, llm_server.url))


@pytest.mark.parametrize("body", [{"models": []}, [1, 2], {"data": "x"}, {"data": [{"name": "no id"}]},
                                  {"data": [{"id": ""}]}, {"data": [{"id": 5}]}])
def test_json_of_the_wrong_shape_is_permanent(llm_server, body):
    llm_server.default = Reply(body=body)

    failure(PermanentError, llm_server.url)


def test_a_key_that_cannot_be_a_header_is_refused_without_quoting_it(llm_server):
    key = "sk-with\nnewline-abcdefgh"

    error = failure(PermanentError, llm_server.url, key=key)

    assert "characters not allowed" in str(error)
    assert llm_server.requests == []


def test_a_base_url_that_is_not_http_is_permanent():
    failure(PermanentError, "ftp://127.0.0.1/models")


def test_user_info_in_the_base_url_is_not_shown(closed_port_url):
    url = closed_port_url.replace("http://", "http://user:hunter2@")

    error = failure(TransientError, url)

    assert "hunter2" not in str(error)


# --- transient failures -----------------------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 502, 503])
def test_5xx_is_transient(llm_server, status):
    llm_server.default = Reply(status=status, body={"error": "down"})

    error = failure(TransientError, llm_server.url)

    assert str(status) in str(error)
    assert error.retry_after_ms is None


def test_429_with_retry_after_seconds_carries_the_delay(llm_server):
    llm_server.default = Reply(status=429, headers={"Retry-After": "7"})

    error = failure(TransientError, llm_server.url)

    assert error.retry_after_ms == 7000
    assert "retry after 7 s" in str(error)


def test_503_with_retry_after_http_date_carries_the_delay(llm_server):
    when = datetime.now(UTC) + timedelta(seconds=30)
    llm_server.default = Reply(status=503, headers={"Retry-After": format_datetime(when, usegmt=True)})

    error = failure(TransientError, llm_server.url)

    assert 27_000 <= error.retry_after_ms <= 31_000


def test_a_response_slower_than_the_read_timeout_is_transient(llm_server):
    llm_server.default = Reply(delay=5, body={"data": []})

    error = failure(TransientError, llm_server.url)

    assert "timed out (ReadTimeout)" in str(error)


def test_connection_refused_is_transient(closed_port_url):
    error = failure(TransientError, closed_port_url)

    assert "could not reach" in str(error) and "ConnectError" in str(error)


# --- helpers ----------------------------------------------------------------------------------------


def test_retry_after_parses_seconds_and_dates_and_ignores_garbage():
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("120", now=now) == 120.0
    assert parse_retry_after("Thu, 01 Jan 2026 12:00:30 GMT", now=now) == 30.0
    assert parse_retry_after("Thu, 01 Jan 2026 11:00:00 GMT", now=now) == 0.0  # in the past: now
    assert parse_retry_after("soon", now=now) is None
    assert parse_retry_after("-5", now=now) is None
    assert parse_retry_after(None) is None


def test_key_hints_never_reveal_more_than_four_characters():
    assert mask_key(KEY) == "sk-…abcd"
    assert mask_key("short") == "…"
    assert mask_key("") == ""
    assert redact(f"key={KEY}!", KEY) == "key=sk-…abcd!"
