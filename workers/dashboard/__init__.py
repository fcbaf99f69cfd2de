"""The operators' dashboard at /dashboard/ (staff only): overview, jobs, failures, workers, schedules."""
