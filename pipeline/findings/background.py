"""The background swap's gap (DESIGN §11) as a cause, and per class as a story piece (DESIGN §17): a class whose objects
lose their answer on another class's background is recognised from its own."""

from __future__ import annotations

from pipeline.findings.record import WARNING, Finding, as_float
from pipeline.findings.shortcut import SHORTCUT_ACTIONS, Cause
from pipeline.findings.story import Piece
from pipeline.findings.words import interval_text, num
from pipeline.records.probes import SwapRecord


def background_cause(swap: SwapRecord | None, level: float) -> Cause | None:
    if swap is None or swap.note or swap.background_gap is None:
        return None
    gap = swap.background_gap
    sentence = (f"Each object pasted onto another class's background: accuracy falls from {num(swap.accuracy_same)} (same class's "
                f"background) to {num(swap.accuracy_other)}, a background gap of {num(gap)} "
                f"({interval_text(swap.background_gap_lo, swap.background_gap_hi, level)}); "
                f"{swap.background_flip:.0%} answer the background's class.")
    finding = Finding(id="background:*:*", severity=WARNING, kind="background", title="Answers from the background, not the object",
                      sentence=sentence, action=SHORTCUT_ACTIONS["background"], effect=gap)
    return Cause(finding)


def background_pieces(swap: SwapRecord | None, level: float, min_effect: float) -> list[Piece]:
    """When the swap's gap fools (its lower bound reaches ``min_effect``): one piece per class whose own gap reaches it,
    a sentence of that class's story ("pasted onto another class's background, 0.90 fewer circle images are answered
    circle")."""
    whole = background_cause(swap, level)
    if swap is None or whole is None or swap.background_gap_lo < min_effect:
        return []
    out = []
    for label, per in sorted(swap.per_class.items()):
        gap = as_float(per.get("background_gap"))
        if gap >= min_effect:
            clause = f"pasted onto another class's background, the {label} objects lose {num(gap)} of their accuracy"
            finding = Finding(id=f"background:{label}:*", severity=WARNING, kind="background",
                              title=f"'{label}' answers come from the background, not the object",
                              sentence=whole.finding.sentence, labels=(label,), effect=gap,
                              action=(f"The {label} objects lose their answer on other backgrounds: add training images of {label} on "
                                      f"varied backgrounds (or paste the objects onto other classes' backgrounds), retrain and re-audit "
                                      f"with --baseline this audit's summary.json."))
            out.append(Piece(Cause(finding), "background", frozenset([label]), clause))
    return out
