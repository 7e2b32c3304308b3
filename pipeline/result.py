"""What an audit returns (the Python API's result)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

@dataclass(frozen=True)
class AuditResult:
    """What an audit returns (the Python API's result): ``verdict`` FIT TO DEPLOY / NOT FIT / INCONCLUSIVE,
    ``exit_code`` the CLI's (0 / 1 / 3), ``summary`` summary.json as a dict, the output folder."""

    verdict: str
    exit_code: int
    output_dir: Path
    summary: dict
    timings: dict  # seconds: explain loop, report rendering

    @property
    def report_path(self) -> Path:
        return self.output_dir / "report.html"

    @property
    def findings(self) -> list[dict]:
        """The audit's conclusions (DESIGN §13), blockers first: summary.json's ``findings``."""
        return list(self.summary.get("findings") or [])

    @property
    def samples(self) -> "pd.DataFrame":
        """samples.csv as a DataFrame, one row per sample (DESIGN §5's columns), read on each access."""
        import pandas as pd

        return pd.read_csv(self.output_dir / "samples.csv", keep_default_na=True)

    def _repr_html_(self) -> str:
        """Jupyter's view: the verdict banner, the findings' cards (title, sentence, what to do) and the gate table, with a link to the full report."""
        from pipeline.report import render_result

        return render_result(self.summary, self.report_path)
