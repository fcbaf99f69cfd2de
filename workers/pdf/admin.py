"""Admin of the pdf app."""
