"""What the user sees while the audit runs: warnings (the audit goes on; errors are raised and printed once by the
CLI) and which stage is running, so a failure can name the stage it happened in."""

from __future__ import annotations

import contextlib
import sys
import time
from typing import Any, Iterator, MutableMapping

STAGE_ATTR = "audit_stage"  # set on an exception by the innermost stage it passed through


def notice(message: str) -> None:
    """A warning the user should see (not an error: the audit goes on)."""
    print(f"warning: {message}", file=sys.stderr)


@contextlib.contextmanager
def stage(name: str, timing: MutableMapping[str, Any] | None = None) -> Iterator[None]:
    """Run a stage of the audit; an exception leaving it carries the stage's name (the innermost one); ``timing``
    receives ``<name>_seconds`` when the stage ends."""
    t0 = time.perf_counter()
    try:
        yield
        if timing is not None:
            timing[f"{name}_seconds"] = round(time.perf_counter() - t0, 3)
    except BaseException as exc:
        if getattr(exc, STAGE_ATTR, None) is None:
            try:
                setattr(exc, STAGE_ATTR, name)
            except AttributeError:  # an exception type that takes no attributes: the message goes without the stage
                pass
        raise


def stage_of(exc: BaseException) -> str | None:
    """The stage an exception left, or None when it happened outside every stage."""
    return getattr(exc, STAGE_ATTR, None)
