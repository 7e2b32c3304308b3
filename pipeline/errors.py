"""Typed errors. Each one carries a complete, user-facing message; the CLI prints it once."""

from __future__ import annotations


class AuditError(Exception):
    """An audit cannot run (exit code 2). ``str(err)`` is the whole message for the user."""

    exit_code = 2
    kind = "error"


class ConfigError(AuditError):
    """The YAML config is invalid: the message names the file and the key path."""

    kind = "config error"


class DatasetError(AuditError):
    """The dataset cannot be read at all (a single bad sample is skipped, not raised)."""

    kind = "dataset error"


class ModelError(AuditError):
    """The model cannot be loaded or does not fit the config/dataset."""

    kind = "model error"


class UsageError(AuditError):
    """Bad command-line usage."""

    kind = "usage error"


def one_line(exc: BaseException, limit: int | None = None) -> str:
    """A library's (often multi-line) error message on one line, whole unless ``limit`` characters cut it."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return (text[:limit] + "…") if limit is not None and len(text) > limit else text


class InternalError(AuditError):
    """A bug, not bad input (exit code 2, never a verdict): the message names the stage that failed and what was kept;
    ``__cause__`` is the original exception (its traceback is printed with PIPELINE_DEBUG=1)."""

    kind = "internal error"
