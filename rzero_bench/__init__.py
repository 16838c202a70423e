"""rzero-bench: reproduce, measure and extend R-Zero (arXiv 2508.05004)."""

__version__ = "0.1.0"
