"""syncdash: keep SQL tables in sync with the outside world."""

__version__ = "0.1.0"
