"""Findings (DESIGN §13): the audit's conclusions, one cause each, built from the summary alone.

A pure function of summary.json's content and the samples table (samples.csv as read, or any
mapping of equal-length columns: ``row, sample_id, label, predicted, confidence, flag`` and, when
present, ``strategy``, ``object_dependence``, ``still_right_without_object``). No TensorFlow, no I/O.

The one hard rule: every failing gate rule is in exactly one finding's ``rules`` (its index into
``summary["gate"]`` in ``rule_index``), every failed trust check in exactly one finding's ``checks``
(:func:`accounts`).

Conventions: a place is a relative rectangle ``(x0, y0, x1, y1)`` in [0, 1] of the model's input;
ids are ``kind:labels:place``, labels joined with ``+`` in sorted order, ``*`` for "every" / "none".

Modules: :mod:`.record` (the record, the samples table), :mod:`.words`, :mod:`.accounting` (unique ids, the accounting check, since the baseline), :mod:`.places`, one module per kind family (causes:
:mod:`.shortcut`, :mod:`.probe`, :mod:`.background`; rules: :mod:`.rules`; :mod:`.trust`; :mod:`.dataset`), and
:mod:`.assemble` (:func:`build`).
"""

from pipeline.findings.accounting import accounts, since_baseline
from pipeline.findings.assemble import build
from pipeline.findings.places import overlaps, place_token, rects_words
from pipeline.findings.record import BLOCKER, NOTE, SEVERITIES, WARNING, Finding
from pipeline.findings.words import interval_text

__all__ = ["BLOCKER", "NOTE", "SEVERITIES", "WARNING", "Finding", "accounts", "build", "interval_text", "overlaps", "place_token",
           "rects_words", "since_baseline"]
