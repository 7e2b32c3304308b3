"""``python -m pipeline history SUMMARY.json...``: the trend over audits (no TensorFlow).

Audits are ordered by start time. Every aggregate any audit gated on (``accuracy``,
``class_mean_energy_in_box[circle]``) becomes a series: one point per audit that has the value,
coloured by that audit's own rule status, with the latest audit's absolute threshold drawn.
Model and evaluation-set changes are marked where the model sha / dataset fingerprint differ
from the previous audit's. Outputs: ``history.html`` (self-contained) and ``history.csv``.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Sequence

from pipeline.config import FLAGS
from pipeline.errors import AuditError
from pipeline.numbers import format_value
from pipeline.records.plain import JsonObject

STATUS_COLOURS = {"pass": "#2b8a3e", "fail": "#c92a2a", "none": "#868e96"}
VERDICT_COLOURS = {"FIT TO DEPLOY": "#2b8a3e", "NOT FIT": "#c92a2a", "INCONCLUSIVE": "#e67700"}


@dataclass(frozen=True)
class Audit:
    path: Path  # its summary.json
    summary: dict
    started: dt.datetime
    model_sha: str
    dataset: str

    @property
    def name(self) -> str:
        return str(self.summary.get("name", "?"))

    @property
    def verdict(self) -> str:
        return str(self.summary.get("verdict", "?"))

    @property
    def finding_ids(self) -> tuple[str, ...]:
        """The ids of its blockers and warnings (DESIGN §13; none for an audit from before findings)."""
        return tuple(f["id"] for f in self.summary.get("findings") or [] if f.get("severity") in ("blocker", "warning"))


@dataclass(frozen=True)
class Series:
    label: str  # "accuracy" or "class_accuracy[cat]"
    aggregate: str
    scope: str  # "overall" or a class name
    values: tuple[float, ...]  # one per audit, NaN where the audit lacks it
    statuses: tuple[str, ...]  # "pass" | "fail" | "none" (the audit did not gate on it)
    threshold: tuple[str, float] | None  # (min | max, value) of the latest audit's absolute rule


def load_audit(path: Path) -> Audit:
    """Read one summary.json; anything else is an AuditError naming the file."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise AuditError(f"{path}: expected a readable summary.json from an audit, found an error: {getattr(exc, 'strerror', None) or exc}") from None
    except ValueError as exc:
        raise AuditError(f"{path}: expected a summary.json from an audit, found invalid JSON ({exc})") from None
    try:
        prov = data["provenance"]
        started = dt.datetime.fromisoformat(prov["started"])
        data["aggregates"]["overall"], data["gate"], data["verdict"]  # noqa: B018 (shape check)
        return Audit(Path(path), data, started, str(prov.get("model_sha256", "")), str(prov.get("dataset_fingerprint", "")))
    except (KeyError, TypeError, ValueError) as exc:
        raise AuditError(f"{path}: expected a summary.json written by `pipeline audit` (with provenance.started, aggregates, gate, verdict), "
                         f"found JSON without {exc}") from None


def load_audits(paths: Sequence[Path]) -> list[Audit]:
    if not paths:
        raise AuditError("history: expected at least one summary.json, found none")
    return sorted((load_audit(p) for p in paths), key=lambda a: (a.started, str(a.path)))


def _value(audit: Audit, aggregate: str, scope: str) -> float:
    agg = audit.summary["aggregates"]
    source = agg.get("overall", {}) if scope == "overall" else agg.get("per_class", {}).get(scope, {})
    v = source.get(aggregate)
    return math.nan if v is None else float(v)


def series(audits: Sequence[Audit]) -> list[Series]:
    """One series per gated (aggregate, scope), in first-seen order."""
    keys: dict[str, tuple[str, str]] = {}
    for a in audits:
        for r in a.summary["gate"]:
            keys.setdefault(r["label"], (r["aggregate"], r["scope"]))
    out = []
    for label, (aggregate, scope) in keys.items():
        statuses = []
        threshold = None
        for a in audits:
            own = [r for r in a.summary["gate"] if r["label"] == label and r["status"] in ("pass", "fail")]
            statuses.append("fail" if any(r["status"] == "fail" for r in own) else "pass" if own else "none")
            absolute = [r for r in a.summary["gate"] if r["label"] == label and r["kind"] in ("min", "max")]
            if absolute:
                threshold = (absolute[-1]["kind"], float(absolute[-1]["threshold"]))
        out.append(Series(label, aggregate, scope, tuple(_value(a, aggregate, scope) for a in audits), tuple(statuses), threshold))
    return out


def changes(audits: Sequence[Audit]) -> list[dict[str, bool]]:
    """Per audit: did the model / the evaluation set change from the previous audit?"""
    out = [{"model": False, "dataset": False}]
    for prev, cur in zip(audits, audits[1:]):
        out.append({"model": prev.model_sha != cur.model_sha, "dataset": prev.dataset != cur.dataset})
    return out


def csv_rows(audits: Sequence[Audit], all_series: Sequence[Series]) -> tuple[list[str], list[list[str]]]:
    labels = [s.label for s in all_series]
    rates = [f"{f}_rate" for f in FLAGS if f"{f}_rate" not in labels]  # a gated rate is already a column
    header = ["started", "name", "verdict", "model_sha", "dataset_fingerprint", "findings", *labels, *rates]
    rows = []
    for i, a in enumerate(audits):
        overall = a.summary["aggregates"]["overall"]
        cells = [a.started.isoformat(), a.name, a.verdict, a.model_sha[:12], a.dataset[:12], " ".join(a.finding_ids)]
        cells += ["" if math.isnan(s.values[i]) else repr(s.values[i]) for s in all_series]
        cells += ["" if overall.get(r) is None else repr(float(overall[r])) for r in rates]
        rows.append(cells)
    return header, rows


_W, _H, _L, _R, _T, _B = 640, 220, 52, 16, 26, 30


def chart(s: Series, audits: Sequence[Audit], marks: Sequence[dict[str, bool]]) -> str:
    """An inline SVG line chart of one series, its threshold, change markers and pass/fail points."""
    n = len(audits)
    finite = [v for v in s.values if not math.isnan(v)]
    lo = min(finite + ([s.threshold[1]] if s.threshold else []), default=0.0)
    hi = max(finite + ([s.threshold[1]] if s.threshold else []), default=1.0)
    pad = (hi - lo) * 0.1 or 0.05
    lo, hi = lo - pad, hi + pad
    x = lambda i: _L + (_W - _L - _R) * (0.5 if n == 1 else i / (n - 1))  # noqa: E731
    y = lambda v: _T + (_H - _T - _B) * (1 - (v - lo) / (hi - lo))  # noqa: E731
    parts = [f'<rect x="{_L}" y="{_T}" width="{_W - _L - _R}" height="{_H - _T - _B}" fill="none" stroke="#ccc"/>',
             f'<text x="{_L}" y="16" class="title">{escape(s.label)}</text>']
    for t in (lo + pad, (lo + hi) / 2, hi - pad):
        parts.append(f'<text x="{_L - 4}" y="{y(t) + 4:.1f}" text-anchor="end" class="tick">{t:.3g}</text>')
    for i, m in enumerate(marks):
        if m["model"]:
            parts.append(f'<line class="model-change" x1="{x(i):.1f}" y1="{_T}" x2="{x(i):.1f}" y2="{_H - _B}" stroke="#7048e8" stroke-width="2">'
                         f"<title>model changed ({escape(audits[i].model_sha[:12])})</title></line>")
        if m["dataset"]:
            parts.append(f'<line class="dataset-change" x1="{x(i) + 3:.1f}" y1="{_T}" x2="{x(i) + 3:.1f}" y2="{_H - _B}" stroke="#f08c00" '
                         f'stroke-width="2" stroke-dasharray="5 3"><title>evaluation set changed ({escape(audits[i].dataset[:12])})</title></line>')
    if s.threshold:
        kind, t = s.threshold
        parts.append(f'<line class="threshold" x1="{_L}" y1="{y(t):.1f}" x2="{_W - _R}" y2="{y(t):.1f}" stroke="#555" stroke-dasharray="4 3">'
                     f"<title>{kind} {t:g} (latest rule)</title></line>")
    pts = [(x(i), y(v)) for i, v in enumerate(s.values) if not math.isnan(v)]
    if len(pts) > 1:
        parts.append('<polyline fill="none" stroke="#495057" stroke-width="1.5" points="' + " ".join(f"{a:.1f},{b:.1f}" for a, b in pts) + '"/>')
    for i, v in enumerate(s.values):
        if not math.isnan(v):
            tip = f"{audits[i].name} {audits[i].started:%Y-%m-%d %H:%M}: {v:.3f} ({s.statuses[i]})"
            parts.append(f'<circle class="point {s.statuses[i]}" cx="{x(i):.1f}" cy="{y(v):.1f}" r="4" fill="{STATUS_COLOURS[s.statuses[i]]}">'
                         f"<title>{escape(tip)}</title></circle>")
    first, last = audits[0].started, audits[-1].started
    parts.append(f'<text x="{_L}" y="{_H - 10}" class="tick">{first:%Y-%m-%d %H:%M}</text>')
    parts.append(f'<text x="{_W - _R}" y="{_H - 10}" text-anchor="end" class="tick">{last:%Y-%m-%d %H:%M}</text>')
    return f'<svg viewBox="0 0 {_W} {_H}" class="chart" role="img" aria-label="{escape(s.label)} over time">' + "".join(parts) + "</svg>"


def view(audits: Sequence[Audit], all_series: Sequence[Series], out_dir: Path) -> JsonObject:
    marks = changes(audits)
    entries = []
    for i, a in enumerate(audits):
        report = a.path.parent / "report.html"
        entries.append({
            "name": a.name, "verdict": a.verdict, "colour": VERDICT_COLOURS.get(a.verdict, "#868e96"),
            "started": f"{a.started:%Y-%m-%d %H:%M}", "model": a.model_sha[:12], "dataset": a.dataset[:12],
            "model_changed": marks[i]["model"], "dataset_changed": marks[i]["dataset"],
            "report": os.path.relpath(report, out_dir) if report.is_file() else None,
            "accuracy": format_value(a.summary["aggregates"]["overall"].get("accuracy")),
            "findings": a.finding_ids, "new": set(a.finding_ids) - set(audits[i - 1].finding_ids) if i else set(),
        })
    latest = audits[-1]
    return {"entries": entries, "charts": [chart(s, audits, marks) for s in all_series], "n": len(audits),
            "latest": latest.name, "latest_verdict": latest.verdict, "status_colours": STATUS_COLOURS}


def write_history(paths: Sequence[Path], out_dir: Path) -> tuple[Path, Path, int]:
    """Write history.html and history.csv into ``out_dir`` (atomically); returns (html, csv, number of audits)."""
    import csv
    import io

    import jinja2

    audits = load_audits(paths)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise AuditError(f"{out_dir}: expected a folder history can write to, found an error: {exc.strerror or exc}") from None
    env = jinja2.Environment(loader=jinja2.PackageLoader("pipeline.report", "templates"), autoescape=True, undefined=jinja2.StrictUndefined)
    all_series = series(audits)
    html = env.get_template("history.html.j2").render(**view(audits, all_series, out_dir.resolve()))
    header, rows = csv_rows(audits, all_series)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    targets = {out_dir / "history.html": html, out_dir / "history.csv": buf.getvalue()}
    for target, text in targets.items():
        tmp = target.with_name(f".{target.name}.partial-{os.getpid()}")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, target)
    return out_dir / "history.html", out_dir / "history.csv", len(audits)
