"""Jobs that exist only for the metrics and logging tests (imported by their worker processes too)."""

from __future__ import annotations

import logging

import pydantic

from workers.catalogue import job

logger = logging.getLogger(__name__)


class LogLinesParams(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")

    secret: str


@job("observed.log_lines", queue="default", params=LogLinesParams, max_retries=0)
def log_lines(*, secret: str) -> dict[str, int]:
    """Log two lines that carry `secret` the careless ways real code does: as a key's value and a header."""
    logger.info("calling the API with api_key=%s", secret)
    logger.warning("upstream refused %s", {"Authorization": f"Bearer {secret}"})
    return {"logged": 2}
