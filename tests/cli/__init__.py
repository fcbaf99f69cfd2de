"""Tests of `manage.py jobs`, the operator CLI."""
