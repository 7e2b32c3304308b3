"""HTML report: build plain view data first (view.py), then render the Jinja template."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def render_report(path: Path, summary: dict, prep: Any, table: Any, **kwargs: Any) -> None:
    """Write one self-contained report.html (inline CSS/JS/SVG, images as data URIs)."""
    import jinja2

    from pipeline.report.view import build_view

    view = build_view(summary, prep, table, **kwargs)
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("pipeline.report", "templates"),
        autoescape=True,  # every dataset/config string is escaped; only our SVG is marked safe
        undefined=jinja2.StrictUndefined,
    )
    html = env.get_template("report.html.j2").render(**view)
    path.write_text(html, encoding="utf-8")
