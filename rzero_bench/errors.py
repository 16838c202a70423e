"""Error types with a one-line, user-facing message and a process exit code.

Exit 2 means bad input (fix the command, the file or the environment); exit 1 means a failure
while doing valid work.
"""

from __future__ import annotations


class RZeroError(Exception):
    """Base error: ``str(err)`` is one line saying what is wrong and how to fix it."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


class UserError(RZeroError):
    """Bad input: unknown task/model/preset, malformed file, missing data. Exit code 2."""

    exit_code = 2


class DataError(UserError):
    """A dataset or local data file is missing or does not match its schema."""


class ConfigError(UserError):
    """A config or task definition is invalid."""


class RunStateError(UserError):
    """A run directory is locked, corrupted, or was made with a different config."""


class BackendError(RZeroError):
    """A generation backend failed (server errors after retries, missing extra, ...)."""


class TrainingError(RZeroError):
    """Training could not proceed (for example too few questions survived the filter)."""
