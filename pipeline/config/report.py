"""``report:`` where the outputs go and how much the gallery shows (DESIGN §5)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipeline.config.reader import Reader
from pipeline.records.plain import JsonObject

DEFAULTS: JsonObject = {
    "output_dir": "auto",  # auto = reports/<name>/ under the working directory; --output overrides it
    "gallery_size": 48,  # samples shown in the report's gallery (those a finding concerns first)
}
"""The report section's keys and their defaults (None under a required key)."""


@dataclass(frozen=True)
class ReportConfig:
    output_dir: Path | None  # None = reports/<name>/ under the working directory
    gallery_size: int


def read_report(r: Reader, raw: object) -> ReportConfig:
    p = r.mapping(raw, "report", DEFAULTS)
    out = p["output_dir"]
    if out == "auto":
        output_dir = None
    else:
        text = r.text(out, "report.output_dir")
        output_dir = Path(text) if Path(text).is_absolute() else (r.base / text).resolve()
    return ReportConfig(output_dir=output_dir, gallery_size=r.integer(p["gallery_size"], "report.gallery_size", minimum=0))
