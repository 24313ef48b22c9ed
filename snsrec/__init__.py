"""snsrec: the intelligence stack of a social content platform."""

__version__ = "0.1.0"
