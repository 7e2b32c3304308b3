"""The status and verdict words every stage reports in (DESIGN §2, §6), and the verdicts' exit codes.

A module of constants with no imports, so pure modules (evidence, gate, summary) can share the
words without importing each other."""

from __future__ import annotations

PASS, FAIL, NOT_EVALUATED = "pass", "fail", "not evaluated"
FIT, NOT_FIT, INCONCLUSIVE = "FIT TO DEPLOY", "NOT FIT", "INCONCLUSIVE"
EXIT_CODES = {FIT: 0, NOT_FIT: 1, INCONCLUSIVE: 3}
