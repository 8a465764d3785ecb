"""genrec: LLM-driven generative recommender."""
__version__ = "0.1.0"
