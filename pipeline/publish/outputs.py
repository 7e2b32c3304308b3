"""Output files (DESIGN.md §5), written into a staging folder and published atomically.

Everything is written to ``.<out>.partial/`` beside the output folder (one run at a time holds
the folder's lock, so the name is stable and a killed run's staging can be resumed);
:meth:`Staging.publish` swaps it into place with renames, so a killed run leaves the previous
complete output (or none), never a half-written report that looks complete.
"""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
from pathlib import Path
from typing import Any, Mapping, Sequence
from xml.sax.saxutils import escape, quoteattr

import numpy as np

from pipeline.explain.columns import active
from pipeline.numbers import aggregate_text, count, fixed, format_value, rule_counts
from pipeline.records.plain import Json

SAMPLE_COLUMNS = tuple(c.name for c in active(()))
"""samples.csv's columns in every run; evidence and compare columns follow when those are on."""


class Staging:
    """A temporary folder that becomes ``target`` on :meth:`publish`."""

    def __init__(self, target: Path, *, resume: bool = False):
        """``resume``: keep an interrupted run's checkpoints (everything else is rewritten)."""
        self.target = target
        target.parent.mkdir(parents=True, exist_ok=True)
        self.path = target.parent / f".{target.name}.partial"
        self.found_stale = self.path.exists()
        self.resumed = resume and (self.path / "checkpoint").is_dir()
        if self.resumed:
            for child in self.path.iterdir():
                if child.name != "checkpoint":
                    shutil.rmtree(child) if child.is_dir() else child.unlink()
        else:
            shutil.rmtree(self.path, ignore_errors=True)
            self.path.mkdir()

    def publish(self) -> None:
        old = self.target.parent / f".{self.target.name}.old-{os.getpid()}"
        if self.target.exists():
            os.replace(self.target, old)
        os.replace(self.path, self.target)
        shutil.rmtree(old, ignore_errors=True)

    def discard(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return None if math.isnan(float(value)) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, Path):
        return str(value)
    return value


def write_json(path: Path, data: Mapping[str, Json]) -> None:
    path.write_text(json.dumps(json_safe(data), indent=2, allow_nan=False) + "\n", encoding="utf-8")


SEVERITY_ICON = {"blocker": "❌", "warning": "⚠️", "note": "ℹ️"}


def findings_md(summary: Mapping[str, Json]) -> list[str]:
    """The findings as Markdown: each blocker's and warning's title, sentence and action; notes one line each."""
    lines = []
    for f in summary.get("findings") or []:
        since = f" ({f['since_baseline']} since the baseline)" if f.get("since_baseline") else ""
        if f["severity"] == "note":
            lines.append(f"- {SEVERITY_ICON['note']} {f['title']}{since}")
            continue
        lines += [f"### {SEVERITY_ICON[f['severity']]} {f['severity']}: {f['title']}{since}", "", f["sentence"], "",
                  f"**What to do:** {f['action']}", ""]
        if f.get("rules"):
            lines += [f"Accounts for: {', '.join(f'`{r}`' for r in f['rules'])}" + (f"; trust check {', '.join(f['checks'])}" if f.get("checks") else ""), ""]
        elif f.get("checks"):
            lines += [f"Accounts for trust check {', '.join(f['checks'])}.", ""]
    return lines


def write_summary_md(path: Path, summary: Mapping[str, Json], report: str | None = None) -> None:
    """A CI job summary: the verdict, then each finding's title, sentence and action, where the report is; then the rule table."""
    icon = {"FIT TO DEPLOY": "✅", "NOT FIT": "❌", "INCONCLUSIVE": "⚠️"}.get(summary["verdict"], "")
    lines = [
        f"## {icon} Grad-CAM audit `{summary['name']}`: **{summary['verdict']}** (exit {summary['exit_code']})",
        "",
        rule_counts(summary["gate"]) + ".",
        "",
        *findings_md(summary),
    ]
    if not any(f["severity"] != "note" for f in summary.get("findings") or []):
        lines += ["", "No blocker and no warning."]
    lines += ["", f"Report: `{report or 'report.html'}` (in the audit's output folder)", ""]
    failed = [r for r in summary["gate"] if r["status"] == "fail"]
    if failed:
        lines += ["Failed rules:", *[f"- {r['message']}" for r in failed], ""]
    checks = summary.get("trust", {}).get("checks", [])
    if checks:
        lines += ["Trust checks (a failed check makes an otherwise passing audit INCONCLUSIVE):",
                  *[f"- {c['status']}: {c['message']}" for c in checks], ""]
    lines += ["| rule | scope | value | interval | compared | threshold | baseline | status |", "|---|---|---|---|---|---|---|---|"]
    for r in summary["gate"]:
        ci = r.get("interval")
        span = f"{fixed(ci[0])}–{fixed(ci[1])} (n {r['n']})" if ci and ci[0] is not None else "—"
        name = r.get("aggregate", r["metric"])
        lines.append(
            f"| `{r['metric']}` {r['kind']} | {r['scope']} | {aggregate_text(name, r['value'])} | {span} | "
            f"{aggregate_text(name, r.get('compared'))} ({r.get('bound', 'point')}) | {r['threshold']:g} | {aggregate_text(name, r['baseline'])} | {r['status']} |"
        )
    warnings = [r["warning"] for r in summary["gate"] if r.get("warning")]
    if warnings:
        lines += ["", *[f"- warning: {w}" for w in warnings]]
    agg = summary["aggregates"]["overall"]
    counts = summary["flag_counts"]
    lines += [
        "",
        f"{count(agg.get('n_samples'))} samples, {count(agg.get('n_scored'))} scored; accuracy {format_value(agg.get('accuracy'))}, "
        f"mean energy in box {format_value(agg.get('mean_energy_in_box'))}, mean focus score {format_value(agg.get('mean_focus_score'))}.",
        "",
        "Flags: " + ", ".join(f"{k} {v}" for k, v in counts.items()),
        "",
    ]
    path.write_text("\n".join(lines), encoding="utf-8")


def write_records_csv(path: Path, records: list[Mapping[str, Json]], columns: tuple[str, ...]) -> None:
    """A table of records (strategies.csv, probes.csv): ``columns`` in order; None and NaN empty, floats to 6 significant digits."""
    import pandas as pd

    frame = pd.DataFrame([{c: r.get(c) for c in columns} for r in records], columns=list(columns))
    frame.to_csv(path, index=False, float_format="%.6g", na_rep="", lineterminator="\n")


def append_column(path: Path, name: str, values: list[str]) -> None:
    """Add a last column to samples.csv (written before the column was known); the other fields are
    rewritten as they were read, so their text does not change."""
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    if len(rows) != len(values) + 1:
        raise ValueError(f"{path}: {len(rows) - 1} rows, {len(values)} values for column {name!r}")
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh, lineterminator="\n")
        out.writerow(rows[0] + [name])
        out.writerows(row + [value] for row, value in zip(rows[1:], values))
    os.replace(tmp, path)


def _junit_case(classname: str, name: str, status: str, message: str) -> str:
    body = ""
    if status == "fail":
        body = f"<failure message={quoteattr(message)}>{escape(message)}</failure>"
    elif status == "not evaluated":
        body = f"<skipped message={quoteattr(message)}/>"
    else:  # a passing case says what passed (value, interval, value compared)
        body = f"<system-out>{escape(message)}</system-out>"
    return f"  <testcase classname={quoteattr(classname)} name={quoteattr(name)}>{body}</testcase>"


def _with_interval(rule: Mapping[str, Json]) -> str:
    """A rule's message, with its interval and the value compared when the message does not say them."""
    ci = rule.get("interval")
    if not ci or ci[0] is None or "compared" in rule["message"]:
        return rule["message"] + (f" [warning: {rule['warning']}]" if rule.get("warning") else "")
    text = f"{rule['message']} (n {rule['n']}, interval {fixed(ci[0])} to {fixed(ci[1])}, {rule['bound']} value compared)"
    return text + (f" [warning: {rule['warning']}]" if rule.get("warning") else "")


def write_junit(path: Path, summary: Mapping[str, Json]) -> None:
    """Two suites: ``findings`` (one case per finding: failed for blockers, and for warnings when the verdict is
    INCONCLUSIVE), then the rules (one case per gate rule, per class for class rules), per trust check, per
    confirmed shortcut, per fooling probe and per property shortcut (DESIGN §15); not evaluated = skipped."""
    from pipeline.probes.stage import place_words

    cls = "gradcam_audit." + summary["name"]
    inconclusive = summary["verdict"] == "INCONCLUSIVE"
    found = [(cls + ".findings", f"{f['severity']}: {f['title']}",
              "fail" if f["severity"] == "blocker" or (f["severity"] == "warning" and inconclusive) else "pass",
              f"{f['sentence']} What to do: {f['action']}") for f in summary.get("findings") or []]
    entries = [(cls, f"{r['label']} {r['kind']} {r['threshold']:g}", r["status"], _with_interval(r)) for r in summary["gate"]]
    entries += [(cls + ".trust", f"trust {c['name']}", c["status"], c["message"]) for c in summary.get("trust", {}).get("checks", [])]
    entries += [(cls + ".strategies", f"confirmed shortcut {s['label']} strategy {s['strategy']}", "fail", s["sentence"])
                for lab in (summary.get("strategies") or {}).get("labels", []) for s in lab["strategies"] if s["confirmed"]]
    entries += [(cls + ".probes", f"fooled by {r['probe']} {place_words(r['place'], (r['x0'], r['y0'], r['x1'], r['y1']))} into {r['class']}", "fail",
                 f"{r['sentence']} (effect {r['effect']:.2f}, interval {r['effect_lo']:.2f} to {r['effect_hi']:.2f})")
                for r in (summary.get("probes") or {}).get("rows", []) if r["fools"]]
    entries += [(cls + ".properties", f"property shortcut: {r['property']} {r['direction']} into {r['class']}", "fail",
                 f"{r['sentence']} (effect {r['effect']:.2f}, interval {r['effect_lo']:.2f} to {r['effect_hi']:.2f})")
                for r in ((summary.get("probes") or {}).get("properties") or {}).get("rows", []) if r["verdict"] == "shortcut"]
    xml = ('<?xml version="1.0" encoding="utf-8"?>\n<testsuites>\n' + _suite("gradcam-audit " + summary["name"] + " findings", found)
           + _suite("gradcam-audit " + summary["name"], entries) + "</testsuites>\n")
    path.write_text(xml, encoding="utf-8")


def _suite(name: str, entries: Sequence[tuple[str, str, str, str]]) -> str:
    cases = [_junit_case(*e) for e in entries]
    failures = sum(e[2] == "fail" for e in entries)
    skipped = sum(e[2] == "not evaluated" for e in entries)
    return (f'<testsuite name={quoteattr(name)} tests="{len(cases)}" failures="{failures}" errors="0" skipped="{skipped}">\n'
            + "".join(c + "\n" for c in cases) + "</testsuite>\n")
