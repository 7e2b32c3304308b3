"""Warnings the user should see while the audit goes on (errors are raised, and printed once by the CLI)."""

from __future__ import annotations

import sys

def notice(message: str) -> None:
    """A warning the user should see (not an error: the audit goes on)."""
    print(f"warning: {message}", file=sys.stderr)
