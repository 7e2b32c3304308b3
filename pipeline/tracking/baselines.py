"""Baselines from MLflow: ``--baseline models:/NAME@champion`` (or ``models:/NAME/VERSION``, or an audit run,
``runs:/RUN_ID``) -> the summary.json and samples.csv of the audit run that the version's
``gradcam_audit.run_id`` tag names, so change rules compare with the champion's own last audit."""

from __future__ import annotations

from pathlib import Path

from pipeline.config.uris import FORMS, parse
from pipeline.errors import AuditError
from pipeline.tracking.client import connect
from pipeline.tracking.models import download, version_of

RUN_TAG = "gradcam_audit.run_id"


def resolve_baseline(text: str, tracking: str) -> Path:
    """The local summary.json (samples.csv beside it when the run has one) of the audit the URI names."""
    uri = parse(text)
    if uri is None:
        raise AuditError(f"--baseline {text}: expected a summary.json path or {FORMS}")
    label = f"--baseline {text}"
    client = connect(tracking, label)
    if uri.registry:
        mv = version_of(client, uri, tracking)
        run_id = (mv.tags or {}).get(RUN_TAG)
        if not run_id:
            raise AuditError(f"{label}: expected version {mv.version} of {mv.name!r} to have been audited (a {RUN_TAG} tag on it), "
                             f"found no such tag: audit that version with --mlflow first")
    else:
        run_id = uri.run_id
    prefix = uri.path if uri.path and not uri.path.endswith(".json") else ""
    summary = download(f"runs:/{run_id}/{prefix + '/' if prefix else ''}summary.json", tracking, f"runs/{run_id}/{prefix or '_root'}/summary",
                       f"{label} (audit run {run_id})")
    try:  # change rules with a bound need the samples; without them only point rules are compared
        samples = download(f"runs:/{run_id}/{prefix + '/' if prefix else ''}samples.csv", tracking,
                           f"runs/{run_id}/{prefix or '_root'}/samples", label)
        beside = summary.parent / "samples.csv"
        if not beside.exists():
            beside.symlink_to(samples)
    except AuditError:
        pass
    return summary
