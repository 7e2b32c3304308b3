"""What the user sees while the audit runs: warnings (the audit goes on; errors are raised and printed once by the
CLI), which stage is running (so a failure can name the stage it happened in) and each stage's progress bar."""

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


class Progress:
    """One stage's progress bar on stderr ("probes 120/384 cells", its rate and time left), or nothing when disabled
    (``--no-progress``). The stage says its total and unit when it knows them (:meth:`start`) and ticks; a test that
    stops early (DESIGN §18) ticks its whole share at once, so the bar ends at its total."""

    def __init__(self, name: str, enabled: bool):
        self.name, self.enabled, self.bar = name, enabled, None

    def start(self, total: int, unit: str) -> None:
        if not self.enabled:
            return
        from tqdm import tqdm

        self.close()
        self.bar = tqdm(total=total, desc=self.name, unit=f" {unit}", unit_scale=False, file=sys.stderr, leave=True)

    def tick(self, n: int = 1) -> None:
        if self.bar is not None:
            self.bar.update(n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


@contextlib.contextmanager
def progress(name: str, enabled: bool) -> Iterator[Progress]:
    """A :class:`Progress` for one stage, closed when it ends."""
    bar = Progress(name, enabled)
    try:
        yield bar
    finally:
        bar.close()
