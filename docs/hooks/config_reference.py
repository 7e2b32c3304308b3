"""The configuration reference, generated from ``pipeline/config/`` at every docs build so it cannot drift.

Each section's module holds its ``DEFAULTS`` (every key with its default, a comment on the key's line saying what it
means) and its dataclass; this hook reads both (the values by importing the module, the comments from its source)
and replaces ``<!-- config-reference -->`` in ``docs/configuration.md`` with one table per section. Closed choices
come from the module's constants the validation uses (``r.choice(..., "explain.method", CAM_METHODS)``).
"""

from __future__ import annotations

import ast
import importlib
import inspect
import io
import json
import re
import tokenize
from types import ModuleType

MARKER = "<!-- config-reference -->"
CHOICE = re.compile(r'"([a-z_]+\.[a-z_]+)",\s*([A-Z][A-Z_]+)\)')


def _comments(source: str) -> dict[int, str]:
    """Line number -> the comment on it (without ``#``)."""
    out: dict[int, str] = {}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            out[tok.start[0]] = tok.string.lstrip("#").strip()
    return out


def _defaults_node(tree: ast.Module) -> ast.Dict | None:
    for node in tree.body:
        target = node.target if isinstance(node, ast.AnnAssign) else (node.targets[0] if isinstance(node, ast.Assign) else None)
        if isinstance(target, ast.Name) and target.id == "DEFAULTS" and isinstance(node.value, ast.Dict):
            return node.value
    return None


def key_comments(source: str) -> dict[str, str]:
    """``DEFAULTS``' key -> the comment on its line (and on comment-only lines right under it)."""
    node = _defaults_node(ast.parse(source))
    if node is None:
        return {}
    comments = _comments(source)
    lines = source.splitlines()
    out: dict[str, str] = {}
    for key in node.keys:
        if not isinstance(key, ast.Constant):
            continue
        words = [comments[key.lineno]] if key.lineno in comments else []
        line = key.end_lineno or key.lineno
        while line < len(lines) and lines[line].strip().startswith("#"):
            words.append(lines[line].strip().lstrip("#").strip())
            line += 1
        out[key.value] = " ".join(words)
    return out


def choices(module: ModuleType) -> dict[str, tuple[str, ...]]:
    """``section.key`` -> the options its validation accepts, read from ``r.choice(..., "section.key", NAME)``."""
    out: dict[str, tuple[str, ...]] = {}
    for key, name in CHOICE.findall(inspect.getsource(module)):
        options = getattr(module, name, None)
        if isinstance(options, tuple) and all(isinstance(o, str) for o in options):
            out[key] = options
    return out


def _value(path: str, value: object) -> str:
    required = importlib.import_module("pipeline.config.audit").REQUIRED
    return "*required*" if path in required else f"`{json.dumps(value)}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def section_table(name: str, module: ModuleType) -> list[str]:
    """One section's heading, its module's docstring and a table of its keys."""
    defaults = module.DEFAULTS
    source = inspect.getsource(module)
    notes = key_comments(source)
    options = choices(module)
    doc = (module.__doc__ or "").strip().replace("\n", " ")
    lines = [f"## `{name}`", "", doc, "", "| key | default | meaning |", "|---|---|---|"]
    for key, value in defaults.items():
        path = f"{name}.{key}"
        meaning = notes.get(key, "")
        if path in options:
            meaning = f"one of {', '.join(f'`{o}`' for o in options[path])}. {meaning}".strip()
        lines.append(f"| `{path}` | {_cell(_value(path, value))} | {_cell(meaning)} |")
    for key, replaced_by in getattr(module, "RETIRED", {}).items():
        lines.append(f"| `{name}.{key}` | *retired* | {_cell(f'an error naming its replacement: {replaced_by}')} |")
    return lines + [""]


def _gate_section() -> list[str]:
    gate = importlib.import_module("pipeline.config.gate")
    names = [*gate.AGGREGATES, *gate.STRATEGY_AGGREGATES, *gate.PROBE_AGGREGATES]
    return [
        "## `gate`", "", (gate.__doc__ or "").strip(), "",
        "A non-empty list of rules; every rule must pass for FIT TO DEPLOY.", "",
        "| key | meaning |", "|---|---|",
        "| `gate[i].metric` | an aggregate below, or `class_<aggregate>` to require it of every class |",
        *(f"| `gate[i].{kind}` | {text} |" for kind, text in (
            ("min", "the aggregate must be at least this"),
            ("max", "the aggregate must be at most this"),
            ("max_drop", "compared with `--baseline`: the aggregate may fall by at most this (not evaluated without one)"),
            ("max_rise", "compared with `--baseline`: the aggregate may rise by at most this"),
        )),
        f"| `gate[i].bound` | one of {', '.join(f'`{b}`' for b in gate.BOUNDS)}: compare the interval's bound, not the point |",
        "", "Aggregates: " + ", ".join(f"`{n}`" for n in names) + ".", "",
        "Needing `evidence.interventions`: " + ", ".join(f"`{n}`" for n in gate.EVIDENCE_AGGREGATES) + ".", "",
    ]


def _top_section(audit: ModuleType) -> list[str]:
    notes = key_comments(inspect.getsource(audit))
    lines = ["## Top level", "", "| key | default | meaning |", "|---|---|---|"]
    for key, value in audit.DEFAULTS.items():
        if not isinstance(value, dict):
            lines.append(f"| `{key}` | {_cell(_value(key, value))} | {_cell(notes.get(key, ''))} |")
    return lines + [""]


def reference_markdown() -> str:
    """Every config key, section by section, in the order of the top-level ``DEFAULTS``."""
    audit = importlib.import_module("pipeline.config.audit")
    lines = _top_section(audit)
    for name, value in audit.DEFAULTS.items():
        if isinstance(value, dict):
            lines += section_table(name, importlib.import_module(f"pipeline.config.{name}"))
        elif name == "gate":
            lines += _gate_section()
    return "\n".join(lines)


def on_page_markdown(markdown: str, page: object, config: object, files: object) -> str:
    """The mkdocs hook: fill the marker of docs/configuration.md."""
    return markdown.replace(MARKER, reference_markdown()) if MARKER in markdown else markdown
