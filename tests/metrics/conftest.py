"""Helpers of the metrics tests: scrape /metrics through Django's test client and read samples."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

import tests.metrics.observed_jobs  # noqa: F401 - declares observed.* in this process too


class Scrape:
    """One scrape's samples, by sample name and labels."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                self.samples[(sample.name, frozenset(sample.labels.items()))] = sample.value

    def value(self, name: str, **labels: str) -> float | None:
        """The sample's value; None if the scrape does not have it."""
        return self.samples.get((name, frozenset(labels.items())))

    def count(self, name: str, **labels: str) -> float:
        """A counter's value, 0 if it was never incremented (absent)."""
        return self.value(name, **labels) or 0.0

    def names(self) -> set[str]:
        return {name for name, _ in self.samples}


@pytest.fixture
def scrape(client: Client) -> Callable[..., Scrape]:
    """GET /metrics from 127.0.0.1 (extra args go to the test client) and parse it; fail unless 200."""

    def get(**extra: Any) -> Scrape:
        response = client.get("/metrics", **extra)
        assert response.status_code == 200, response.content
        return Scrape(response.content.decode())

    return get
