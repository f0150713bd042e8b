"""one4all: time-series analysis on a frozen GPT-2 with Gaussian rank-stabilised LoRA."""

__version__ = "0.1.0"
