"""Who may scrape /metrics: GREENROOM_METRICS_ALLOW (client networks) and GREENROOM_METRICS_TOKEN (bearer)."""

from __future__ import annotations

import pytest

from workers.metrics import access_refusal

TOKEN = "scrape-token-0123456789"


@pytest.fixture(autouse=True)
def single_process(settings):
    settings.GREENROOM_METRICS_DIR = ""
    settings.GREENROOM_METRICS_TOKEN = ""
    settings.GREENROOM_METRICS_ALLOW = ["127.0.0.1/32", "::1/128"]


def get(client, *, addr="127.0.0.1", token=None, **extra):
    if token is not None:
        extra["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    return client.get("/metrics", REMOTE_ADDR=addr, **extra)


def test_localhost_may_scrape_by_default(db, client):
    response = get(client)
    assert response.status_code == 200
    assert b"greenroom_jobs" in response.content
    assert response["Content-Type"].startswith("text/plain")


def test_another_network_is_refused_by_default_with_the_reason(db, client):
    response = get(client, addr="10.0.0.5")
    assert response.status_code == 403
    assert b"10.0.0.5 is not in GREENROOM_METRICS_ALLOW" in response.content
    assert b"greenroom_jobs" not in response.content


def test_allowed_network_may_scrape_without_a_token(db, client, settings):
    settings.GREENROOM_METRICS_ALLOW = ["10.0.0.0/8"]
    assert get(client, addr="10.1.2.3").status_code == 200
    assert get(client, addr="127.0.0.1").status_code == 403


def test_with_a_token_set_the_bearer_is_required_even_from_an_allowed_network(db, client, settings):
    settings.GREENROOM_METRICS_TOKEN = TOKEN
    refused = get(client)
    assert refused.status_code == 403
    assert b"bearer token" in refused.content
    assert get(client, token="wrong-token-0123456789").status_code == 403
    assert get(client, HTTP_AUTHORIZATION=f"Token {TOKEN}").status_code == 403
    assert get(client, token=TOKEN).status_code == 200
    # the network rule still applies: the token does not open other networks while ALLOW lists some
    assert get(client, addr="192.0.2.7", token=TOKEN).status_code == 403


def test_empty_allow_list_with_a_token_admits_any_network_with_the_token(db, client, settings):
    settings.GREENROOM_METRICS_TOKEN = TOKEN
    settings.GREENROOM_METRICS_ALLOW = []
    assert get(client, addr="192.0.2.7", token=TOKEN).status_code == 200
    assert get(client, addr="192.0.2.7").status_code == 403


def test_empty_allow_list_without_a_token_closes_metrics(db, client, settings):
    settings.GREENROOM_METRICS_ALLOW = []
    response = get(client)
    assert response.status_code == 403
    assert b"metrics are closed" in response.content


def test_ipv6_and_ipv4_mapped_localhost_are_localhost():
    allow = ["127.0.0.1/32", "::1/128"]
    assert access_refusal(remote_addr="::1", authorization="", token="", allow=allow) is None
    assert access_refusal(remote_addr="::ffff:127.0.0.1", authorization="", token="", allow=allow) is None
    assert access_refusal(remote_addr="::ffff:10.0.0.1", authorization="", token="", allow=allow) is not None
    assert access_refusal(remote_addr="", authorization="", token="", allow=allow) == "client address unknown"


def test_only_get_is_served(db, client):
    assert client.post("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 405


def test_openmetrics_is_served_when_asked_for(db, client):
    response = get(client, HTTP_ACCEPT="application/openmetrics-text; version=1.0.0")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/openmetrics-text")
    assert response.content.rstrip().endswith(b"# EOF")
