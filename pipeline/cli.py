"""Command line: argument parsing and exit codes; the only place that prints errors.

Exit codes (DESIGN.md §2): 0 FIT, 1 NOT FIT, 2 could not run, 3 INCONCLUSIVE.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Sequence

from pipeline.console import stage_of
from pipeline.errors import AuditError, InternalError, UsageError, one_line


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse exits 2 too; keep one message style
        raise UsageError(f"{self.prog}: {message}")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m pipeline", description="Grad-CAM model audit: is the model looking at the object?")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    a = sub.add_parser("audit", help="run the audit, write the report, exit 0 FIT / 1 NOT FIT / 2 error / 3 INCONCLUSIVE")
    a.add_argument("config", type=Path)
    a.add_argument("--output", type=Path, default=None, help="output folder (default: report.output_dir, else reports/<name>/)")
    a.add_argument("--baseline", default=None, metavar="SUMMARY_OR_URI",
                   help="a previous audit's summary.json, or the audit of a registered version: models:/NAME@champion, runs:/RUN_ID")
    a.add_argument("--limit", type=int, default=None, help="audit a seeded, label-stratified sample of N images (every label present, in proportion)")
    a.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    a.add_argument("--resume", action="store_true", help="continue an interrupted run from its last completed batch")
    a.add_argument("--engine", choices=("local", "ray"), default=None, help="override engine.kind")
    a.add_argument("--mlflow", nargs="?", const="", default=None, metavar="URI",
                   help="log the audit as an MLflow run (tracking URI: this, else mlflow.tracking_uri, MLFLOW_TRACKING_URI, "
                        "sqlite:///reports/mlflow.db)")
    v = sub.add_parser("validate", help="check config, dataset and model without computing Grad-CAM")
    v.add_argument("config", type=Path)
    h = sub.add_parser("history", help="trend over audits: history.html and history.csv from their summary.json files")
    h.add_argument("summaries", type=Path, nargs="+", metavar="SUMMARY.json")
    h.add_argument("--output", type=Path, default=None, help="output folder (default: reports/history/)")
    return p


def _history(args: argparse.Namespace) -> int:
    from pipeline.report.history import write_history

    out = args.output if args.output is not None else Path.cwd() / "reports" / "history"
    html, csv_path, n = write_history(args.summaries, out)
    print(f"history of {n} audit{'' if n == 1 else 's'}: {html} and {csv_path}")
    return 0


def _quiet_native_stderr() -> Path | None:
    """Send what C++ libraries write to fd 2 (TensorFlow's start-up and runtime logs, which ignore
    TF_CPP_MIN_LOG_LEVEL before absl is initialised) to a log file; Python's sys.stderr (our
    messages, the progress bar) keeps the real stderr. PIPELINE_NATIVE_STDERR=1 turns this off."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if os.environ.get("PIPELINE_NATIVE_STDERR") or os.environ.get("PIPELINE_DEBUG"):
        return None
    try:
        sys.stderr.flush()
        real = os.dup(2)
        fd, name = tempfile.mkstemp(prefix="gradcam-audit-native-", suffix=".log")
        os.dup2(fd, 2)
        os.close(fd)
        sys.stderr = os.fdopen(real, "w", buffering=1, encoding="utf-8", errors="replace")
        return Path(name)
    except OSError:
        return None


def _validate(config: Path) -> int:
    from pipeline.config import load_config
    from pipeline.prepare.preprocessing_check import enforce
    from pipeline.prepare.stage import prepare_checked
    from pipeline.run import output_dir
    from pipeline.tracking.session import resolve_inputs

    cfg, resolved, _ = resolve_inputs(load_config(config), None)
    prep = prepare_checked(cfg, limit=None, reports=output_dir(cfg, None).parent, enforce=False, predict=False)
    check = prep.check
    skipped = [s for s in prep.samples if s.skip_reason]
    m = prep.model
    print(f"config ok: {cfg.source}")
    if resolved is not None:
        where = f"version {resolved.version} of {resolved.name!r}" if resolved.name else f"run {resolved.run_id}"
        print(f"model: {resolved.uri} -> {where} at {resolved.tracking_uri}, cached at {resolved.path}")
    if prep.conversion is not None:
        c = prep.conversion
        print(f"model: {c.source} is a Keras 2 model, {c.line()}; cached as {c.converted}"
              + (f"; dropped keys Keras 3 does not know: {', '.join(c.dropped[:8])}{' ...' if len(c.dropped) > 8 else ''}" if c.dropped else "")
              + (f"; {len(c.renamed)} layer names with '/' renamed for Keras 3 (messages and outputs use the original names)" if c.renamed else ""))
    for repaired in prep.loaded.repairs if prep.loaded is not None else ():
        print(f"model: {cfg.model.path.name}: {repaired}")
    print(f"model: {cfg.model.path.name}, input {m.input_size[0]}x{m.input_size[1]}, target layer {m.target_layer} "
          f"({m.layer_shape[0]}x{m.layer_shape[1]}x{m.layer_shape[2]}), {m.n_classes} classes, output activation {m.output_activation}")
    if m.skipped_layers:
        shown = ", ".join(m.skipped_layers[:6]) + (f", ... ({len(m.skipped_layers)} in all)" if len(m.skipped_layers) > 6 else "")
        print(f"target layer auto: passed over {shown}: later maps larger than 1x1 that lie on a branch (not every path to the "
              f"scores passes through them); {m.target_layer} is the last map every path passes through")
    for line in _resolved_lines(cfg, prep):
        print(line)
    print("the model's own preprocessing layers: " + ("; ".join(check.own_layers) or "none (no Rescaling or Normalization layer)"))
    enforce(check, str(cfg.source))  # a clearly better preprocessing: exit 2, as the audit would
    print(check.line())
    per = " (one per image until the prediction pass: multi-label, target predicted)" if prep.pending_predictions else ""
    print(f"dataset: {len(prep.annotations.images)} images, {len(prep.samples)} samples{per} (target {cfg.explain.target}), {len(skipped)} to skip")
    for problem in prep.annotations.problems[:20]:
        print(f"  dataset problem (no usable sample lost): {problem}")
    for s in skipped[:20]:
        print(f"  skip {s.sample_id}: {s.skip_reason}")
    if len(skipped) > 20:
        print(f"  ... and {len(skipped) - 20} more")
    return 0


def _resolved_lines(cfg, prep) -> list[str]:
    """What validate resolved (DESIGN §3/§4): class source, label-map coverage, multi-label, token grid, region."""
    space, m = prep.space, prep.model
    names = space.class_names
    shown = ", ".join(names[:8]) + (f", ... ({len(names)} in all)" if len(names) > 8 else "")
    lines = [f"classes: {len(names)} from {space.source}: {shown}"]
    present = list(dict.fromkeys(b.label for r in prep.annotations.images for b in r.boxes))
    mapped = [lab for lab in present if space.known(lab)]
    unmapped = [lab for lab in present if not space.known(lab)]
    if space.mapped:
        counts = {lab: int(space.sets[space.index(lab)].sum()) for lab in mapped[:10]}
        sets = ", ".join(f"{lab} -> {n} class{'es' if n != 1 else ''}" for lab, n in counts.items())
        lines.append(f"labels: {len(present)} in the dataset, {len(mapped)} mapped to model classes ({sets or 'none'}"
                     f"{', ...' if len(mapped) > 10 else ''}), {len(unmapped)} unmapped"
                     f"{' (' + ', '.join(unmapped[:10]) + '; their samples are skipped)' if unmapped else ''}; "
                     f"{space.unclaimed_classes} of {len(names)} model classes belong to no dataset label")
    elif unmapped:
        lines.append(f"labels: {len(unmapped)} dataset labels are not model classes ({', '.join(unmapped[:10])}); their samples are skipped")
    lines.append(f"multi-label: yes (a class is predicted at probability >= {cfg.model.threshold:g})" if prep.multi_label
                 else f"multi-label: no (the top class is the prediction; output activation {m.output_activation})")
    if m.tokens:
        special, h, w = m.tokens
        lines.append(f"token grid: {special} special token(s) dropped, {h}x{w} patch tokens reshaped row-major "
                     f"(special_tokens {'auto' if cfg.model.special_tokens is None else 'set'}, token_grid {'auto' if cfg.model.token_grid is None else 'set'})")
    spec = m.input
    pre = (f"model (the saved ImageConverter: scale {spec.scale}, offset {spec.offset}, {spec.interpolation})" if spec.preprocessing == "model"
           else spec.preprocessing)
    pixels = ("luma (ITU-R 601-2), one channel" if spec.channels == 1 else "luma (ITU-R 601-2) repeated to three channels") if spec.gray else "RGB"
    lines.append(f"input: {spec.input_size[0]}x{spec.input_size[1]}, {spec.describe()}, {'antialiased' if spec.antialias else 'plain'} "
                 f"resize, {pixels}, preprocessing {pre}")
    lines.append(f"region: {cfg.dataset.region}" + (" (COCO segmentation masks at the input resolution)" if cfg.dataset.region == "mask" else " (box union)"))
    return lines


def _audit(args: argparse.Namespace) -> int:
    from pipeline.api import audit

    if args.limit is not None and args.limit < 1:
        raise UsageError(f"--limit: expected an integer >= 1, found {args.limit}")
    result = audit(args.config, output=args.output, baseline=args.baseline, limit=args.limit, engine=args.engine,
                   progress=not args.no_progress, resume=args.resume, mlflow=args.mlflow)
    compared = result.summary.get("baseline")
    if compared and not compared["dataset_matches"]:
        from pipeline.conclude.baseline import DIFFERENT_DATA

        print(f"warning: {DIFFERENT_DATA} ({compared['path']})", file=sys.stderr)
    problems = result.summary.get("dataset_problems", [])
    if problems:
        print(f"warning: {len(problems)} dataset problem(s) touched no usable sample; listed in the report and summary.json "
              f"(first: {problems[0]})", file=sys.stderr)
    run = result.summary.get("mlflow")
    if run and run.get("logged"):
        print(f"mlflow: run {run['run_id']} in experiment {run['experiment']!r} at {run['tracking_uri']}")
    for note in (run or {}).get("notes", []):
        print(f"mlflow: {note}")
    for line in result_lines(result.summary):
        print(line)
    print(f"report: {result.output_dir / 'report.html'}")
    return result.exit_code


def result_lines(summary: dict) -> list[str]:
    """The audit's closing lines: the verdict with its headline numbers ("—" where one is missing), then one
    line per finding (blockers and warnings with what to do); the report's path follows."""
    from pipeline.numbers import format_value, rule_counts

    agg = summary["aggregates"]["overall"]
    numbers = [f"{name} {format_value(agg.get(key))}" for name, key in (
        ("accuracy", "accuracy"), ("balanced accuracy", "balanced_accuracy"), ("majority-class share", "majority_accuracy"),
        ("mean energy in box", "mean_energy_in_box"), ("mean focus score", "mean_focus_score")) if key in agg]
    lines = [f"{summary['verdict']} (exit {summary['exit_code']}): {rule_counts(summary['gate'])}; {', '.join(numbers)}"]
    for f in summary.get("findings") or []:
        since = f" [{f['since_baseline']}]" if f.get("since_baseline") else ""
        accounts = f" ({len(f['rules'])} rule{'s' if len(f['rules']) != 1 else ''})" if f.get("rules") else ""
        lines.append(f"  {f['severity']}: {f['title']}{accounts}{since}")
        if f["severity"] != "note":
            lines.append(f"    what to do: {f['action']}")
    return lines


def _terminate_as_interrupt() -> None:
    """A cancelled CI job gets SIGTERM, whose default ends Python at once: the staging folder and the output
    lock stay behind and an MLflow run stays RUNNING. Raised as an interrupt instead, every ``finally`` runs
    (lock released, staging discarded or kept for --resume, the run ended FAILED) and the exit code is 2."""
    def interrupt(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, interrupt)


def main(argv: Sequence[str] | None = None) -> int:
    native_log = None
    if argv is None:  # only when run as a program
        native_log = _quiet_native_stderr()
        _terminate_as_interrupt()
    code = _main(argv, native_log)
    if argv is None:  # the outputs are published and the exit code decided: a cancel landing now changes neither
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if native_log is not None and not _KEEP_LOG:
        native_log.unlink(missing_ok=True)
    return code


_KEEP_LOG: list = []  # set by an internal error, whose message points at the native log


def _main(argv: Sequence[str] | None, native_log: Path | None) -> int:
    try:
        args = _parser().parse_args(argv)
        commands = {"validate": lambda: _validate(args.config), "audit": lambda: _audit(args), "history": lambda: _history(args)}
        return commands[args.command]()
    except InternalError as exc:
        return _internal(str(exc), exc.__cause__ or exc, native_log)
    except AuditError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt as exc:
        by = f" by {exc}" if str(exc) else ""
        print(f"error: interrupted{by}; no report was published", file=sys.stderr)
        return 2
    except MemoryError:
        print("error: out of memory; lower explain.batch_size", file=sys.stderr)
        return 2
    except Exception as exc:  # a bug, not bad input: still one message, the traceback on request
        where = stage_of(exc)
        return _internal(f"internal error{f' in the {where} stage' if where else ''}, {type(exc).__name__}: {one_line(exc, 400)}",
                         exc, native_log)


def _internal(message: str, exc: BaseException, native_log: Path | None) -> int:
    """A bug is exit 2 whatever the environment (1 would read as NOT FIT to a CI gate); PIPELINE_DEBUG=1 adds the
    traceback before the one ``error:`` line."""
    if os.environ.get("PIPELINE_DEBUG"):
        traceback.print_exception(exc, file=sys.stderr)
        print(f"error: {message}", file=sys.stderr)
        return 2
    where = f"; native library log: {native_log}" if native_log else ""
    _KEEP_LOG.append(True)
    print(f"error: {message} (set PIPELINE_DEBUG=1 for the traceback{where})", file=sys.stderr)
    return 2
