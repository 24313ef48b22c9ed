"""Errors a user can act on.

Every ``SnsrecError`` message names the file, column or key at fault and the
fix, on one line. The CLI prints it and exits with code 2, no traceback.
"""

from __future__ import annotations


class SnsrecError(Exception):
    """Base class: bad input the user can fix."""

    exit_code = 2


class ConfigError(SnsrecError):
    """A config file or --set override is wrong (unknown key, bad value)."""


class DataError(SnsrecError):
    """A data file is missing, unreadable or has the wrong content."""


class SchemaError(DataError):
    """A table lacks a required column or has one of the wrong type."""


class ModelError(SnsrecError):
    """A model name, checkpoint or run directory is wrong."""
