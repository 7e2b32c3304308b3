"""HTML report: build plain view data first (view.py), then render the Jinja template."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _template(name: str) -> Any:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("pipeline.report", "templates"),
        autoescape=True,  # every dataset/config string is escaped; only our SVG is marked safe
        undefined=jinja2.StrictUndefined,
    )
    return env.get_template(name)


def render_report(path: Path, summary: dict, prep: Any, table: Any, **kwargs: Any) -> None:
    """Write one self-contained report.html (inline CSS/JS/SVG, images as data URIs)."""
    from pipeline.report.view import build_view

    view = build_view(summary, prep, table, **kwargs)
    path.write_text(_template("report.html.j2").render(**view), encoding="utf-8")


def render_result(summary: dict, report_path: Path) -> str:
    """A notebook's view of an audit (``AuditResult._repr_html_``): the verdict banner, the findings' cards, the gate table, a link to the report."""
    from pipeline.numbers import rule_counts
    from pipeline.report.view import _gate_rows

    colour = {"FIT TO DEPLOY": "#2b8a3e", "NOT FIT": "#c92a2a"}.get(summary["verdict"], "#e67700")
    return _template("result.html.j2").render(summary=summary, colour=colour, gate_rows=_gate_rows(summary), rule_counts=rule_counts(summary["gate"]),
                                             report=report_path.as_uri() if report_path.is_absolute() else str(report_path))
