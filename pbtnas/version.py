"""The package version, in a leaf module: code below the top-level package (the task check's
memo records it) reads it here without importing :mod:`pbtnas`, which reaches every layer."""

__version__ = "0.1.0"
