"""Admin of the sources app."""
