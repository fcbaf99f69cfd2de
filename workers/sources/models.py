"""Models of the sources app."""
