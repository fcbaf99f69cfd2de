"""llm jobs (issue 3)."""
