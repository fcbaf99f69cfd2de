"""The work itself, in plain functions that know nothing of Dramatiq (tested without a broker)."""
