"""The guide (docs/) stays in step with the code: every config key of DESIGN §3 is in the generated reference, every
key there says what it means, every error message the CLI can print is in Troubleshooting, and the README stays short."""

from __future__ import annotations

import ast
import importlib.util
import re
import shutil
import subprocess

import pytest
import yaml

from conftest import ROOT, SHARED, require

DOCS = ROOT / "docs"
ERRORS = {"AuditError", "ConfigError", "DatasetError", "ModelError", "UsageError", "InternalError"}


def _reference() -> str:
    spec = importlib.util.spec_from_file_location("config_reference", DOCS / "hooks" / "config_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.reference_markdown()


def _keys(node: object, prefix: str = "") -> set[str]:
    """Dotted key paths of a YAML mapping (a list's rules are the gate's, named ``gate``)."""
    if not isinstance(node, dict):
        return set()
    out = set()
    for key, value in node.items():
        path = f"{prefix}{key}"
        out.add(path)
        out |= _keys(value, path + ".")
    return out


def _design_keys() -> set[str]:
    text = (SHARED / "DESIGN.md").read_text(encoding="utf-8")
    section = text[text.index("## 3. Config"):text.index("## 4. ")]
    keys: set[str] = set()
    for block in re.findall(r"```yaml\n(.*?)```", section, flags=re.S):
        keys |= _keys(yaml.safe_load(block))
    return keys


def test_every_design_config_key_is_in_the_generated_reference():
    require((SHARED / "DESIGN.md").is_file(), f"{SHARED / 'DESIGN.md'} is absent")
    reference = _reference()
    keys = _design_keys()
    assert {"model.path", "dataset.split", "trust.max_no_signal", "engine.kind", "gate", "report.gallery_size"} <= keys
    missing = sorted(k for k in keys if f"`{k}`" not in reference)
    assert not missing, f"keys of DESIGN §3 missing from docs' configuration reference: {missing}"


def test_every_key_in_the_reference_says_what_it_means():
    rows = [line for line in _reference().splitlines() if line.startswith("| `")]
    assert len(rows) > 80
    empty = [row.split("|")[1].strip() for row in rows if not row.rstrip("| ").split("|")[-1].strip()]
    assert not empty, f"config keys without a comment in their module's DEFAULTS: {empty}"


def _template(node: ast.AST) -> str:
    """A message as written in the code, its computed parts as "…"."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else "…" for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _template(node.left) + _template(node.right)
    return "…"


def _messages() -> list[tuple[str, str]]:
    """(where, the longest fixed part) of every typed error raised in pipeline/ with a fixed part of 12+ characters."""
    out = []
    for path in sorted((ROOT / "pipeline").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            call = node.exc if isinstance(node, ast.Raise) else None
            if isinstance(call, ast.Call) and getattr(call.func, "id", None) in ERRORS and call.args:
                fixed = max((part.strip() for part in _template(call.args[0]).split("…")), key=len)
                if len(fixed) >= 12:
                    out.append((f"{path.relative_to(ROOT)}:{node.lineno}", fixed.replace("|", "/")))
    return out


def test_every_cli_error_message_is_in_troubleshooting():
    page = (DOCS / "troubleshooting.md").read_text(encoding="utf-8")
    messages = _messages()
    assert len(messages) > 100
    missing = [(where, text) for where, text in messages if text not in page]
    assert not missing, f"error messages missing from docs/troubleshooting.md: {missing}"
    cli = (ROOT / "pipeline" / "cli.py").read_text(encoding="utf-8")
    for fixed in ("no report was published", "out of memory; lower explain.batch_size", "set PIPELINE_DEBUG=1 for the traceback"):
        assert fixed in cli and fixed in page


def test_the_readme_is_short_and_links_the_guide():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 200
    assert "make audit" in readme and "make test" in readme and "make docs" in readme
    for page in re.findall(r"`([\w/-]+\.md)`", readme):
        assert (DOCS / page).is_file() or (DOCS / page.rstrip("/")).exists(), page


def test_the_guide_builds_strictly(tmp_path):
    mkdocs = shutil.which("mkdocs", path=str(ROOT / ".venv" / "bin")) or shutil.which("mkdocs")
    if mkdocs is None:
        pytest.skip("mkdocs is not installed (pip install '.[docs]')")
    done = subprocess.run([mkdocs, "build", "--strict", "--quiet", "--site-dir", str(tmp_path / "site")], cwd=ROOT,
                          capture_output=True, text=True, env={"NO_MKDOCS_2_WARNING": "1", "PATH": str(ROOT / ".venv" / "bin"),
                                                               "PYTHONPATH": str(ROOT)}, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    config = (tmp_path / "site" / "configuration" / "index.html").read_text(encoding="utf-8")
    assert "model.target_layer" in config and "config-reference" not in config
    assert (tmp_path / "site" / "findings" / "img" / "shortcut.png").is_file()
