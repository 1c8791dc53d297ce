"""overlay-venv: virtual environments layered on top of a read-only release."""

__version__ = "0.1.0"
