"""documents jobs (issue 3)."""
