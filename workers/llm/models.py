"""Models of the llm app."""
