"""sources jobs (issue 3)."""
