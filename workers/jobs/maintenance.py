"""maintenance jobs (issue 3)."""
