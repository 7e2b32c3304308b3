"""The background swap's gap (DESIGN §11) as a cause."""

from __future__ import annotations

from typing import Any, Mapping


from pipeline.findings.record import Finding, WARNING, as_float, interval_text, num
from pipeline.findings.shortcut import Cause, SHORTCUT_ACTIONS


def background_cause(summary: Mapping[str, Any], level: float) -> Cause | None:
    swap = (summary.get("probes") or {}).get("background_swap")
    if not swap or swap.get("note") or swap.get("background_gap") is None:
        return None
    gap = as_float(swap["background_gap"])
    sentence = (f"Each object pasted onto another class's background: accuracy falls from {num(swap['accuracy_same'])} (same class's "
                f"background) to {num(swap['accuracy_other'])}, a background gap of {num(gap)} "
                f"({interval_text(swap.get('background_gap_lo'), swap.get('background_gap_hi'), level)}); "
                f"{as_float(swap.get('background_flip')):.0%} answer the background's class.")
    finding = Finding(id="background:*:*", severity=WARNING, kind="background", title="Answers from the background, not the object",
                      sentence=sentence, action=SHORTCUT_ACTIONS["background"], effect=gap)
    return Cause(finding)
