"""Exception types, one per kind of user mistake.

Every error carries a message that names the file, key or class at fault. The CLI prints
the message on one line and exits non-zero, without a traceback.
"""

from __future__ import annotations


class HemosynthError(Exception):
    """Base class of every error hemosynth raises on purpose."""


class ConfigError(HemosynthError, ValueError):
    """A configuration key is unknown or a value is out of range."""


class PoolError(HemosynthError):
    """A cell pool is missing, corrupt, empty, or does not match its manifest."""


class DatasetError(HemosynthError):
    """A dataset folder is missing files, is half-written, or cannot be written."""


class FormatError(HemosynthError):
    """An annotation file cannot be read (bad line, unknown class, box out of range)."""
