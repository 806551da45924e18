"""SARLANG Studio core: headless SAR scene I/O, preprocessing and services (no Qt here)."""

__version__ = "0.1.0"
