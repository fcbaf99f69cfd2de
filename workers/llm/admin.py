"""Admin of the llm app."""
