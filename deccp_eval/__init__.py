"""deccp-eval: measure how language models censor questions about China."""

__version__ = "0.1.0"
