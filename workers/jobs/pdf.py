"""pdf jobs (issue 3)."""
