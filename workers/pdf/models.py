"""Models of the pdf app."""
