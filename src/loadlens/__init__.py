"""loadlens: turn LLM serving benchmark traces into capacity, latency and cost decisions."""

__version__ = "0.1.0"
