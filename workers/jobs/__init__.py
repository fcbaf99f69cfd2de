"""The job catalogue: importing this package declares every job (one module per job area)."""

from __future__ import annotations

from workers.jobs import diagnostics, documents, llm, maintenance, pdf, sources

__all__ = ["diagnostics", "documents", "llm", "maintenance", "pdf", "sources"]
