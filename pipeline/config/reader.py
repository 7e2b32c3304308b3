"""The strict YAML reader: one parsed document validated key by key, every error naming the file and the key path
(``gate[2].min``), what was expected and what was found. The only module that imports ``yaml``."""

from __future__ import annotations

import copy
import difflib
import math
import re
from pathlib import Path
from typing import Callable, Mapping

import yaml

from pipeline.errors import ConfigError

MAX_CONFIG_BYTES = 1 << 20
MAX_CONFIG_NODES = 10_000
"""A config larger than this, counted with every alias expanded, is refused before it is built."""


def expanded_nodes(root: yaml.Node | None) -> int:
    """How many nodes the document has once every alias is expanded, computed without expanding
    (each distinct node's expanded size is memoised; aliases share node objects)."""
    sizes: dict[int, int] = {}

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        sizes[key] = 1  # a recursive alias counts once; SafeLoader builds it as a cycle, not a blow-up
        total = 1
        if isinstance(node, yaml.SequenceNode):
            total += sum(size(child) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            total += sum(size(k) + size(v) for k, v in node.value)
        sizes[key] = min(total, MAX_CONFIG_NODES + 1)
        return sizes[key]

    return 0 if root is None else size(root)


class StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping (PyYAML keeps the last one silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[object, object] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)  # type: ignore[arg-type]
            if isinstance(key, (str, int, float, bool)) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} appears twice in one mapping (the first is at line {seen[key] + 1})", key_node.start_mark)
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


class Reader:
    """Validates one parsed YAML document; every error names the file and key path."""

    def __init__(self, source: Path, required: set[str] | frozenset[str] = frozenset()):
        self.source = source
        self.base = source.parent
        self.required = required  # key paths ("model.path") that must have a value

    def fail(self, key: str, expected: str, found: object) -> ConfigError:
        return ConfigError(f"{self.source}: {key}: expected {expected}, found {show(found)}")

    def mapping(self, value: object, key: str, allowed: Mapping[str, object]) -> dict[str, object]:
        if not isinstance(value, dict):
            raise self.fail(key or "top level", "a mapping of keys", value)
        for name in value:
            if name not in allowed:
                where = f"{key}.{key_text(name)}" if key else key_text(name)
                hint = difflib.get_close_matches(str(name), list(allowed), n=1)
                extra = f" (did you mean '{hint[0]}'?)" if hint else ""
                raise ConfigError(
                    f"{self.source}: {where}: unknown key{extra}; "
                    f"allowed keys{' under ' + key if key else ''}: {', '.join(allowed)}"
                )
        merged = copy.deepcopy(allowed)
        merged.update(value)
        for name, val in merged.items():
            full = f"{key}.{name}" if key else name
            if val is None and full in self.required:
                raise self.fail(full, "a value (this key is required)", None)
        return merged

    def choice(self, value: object, key: str, options: tuple[str, ...]) -> str:
        if value not in options:
            hint = difflib.get_close_matches(str(value), options, n=1)
            extra = f" (did you mean '{hint[0]}'?)" if hint else ""
            raise self.fail(key, f"one of {', '.join(options)}{extra}", value)
        return value

    def integer(self, value: object, key: str, *, minimum: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(key, f"an integer >= {minimum}", value)
        if value < minimum:
            raise self.fail(key, f"an integer >= {minimum}", value)
        return value

    def number(self, value: object, key: str, *, low: float = -math.inf, high: float = math.inf) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise self.fail(key, range_text(low, high), value)
        if not low <= value <= high:
            raise self.fail(key, range_text(low, high), value)
        return float(value)

    def boolean(self, value: object, key: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(key, "true or false", value)
        return value

    def text(self, value: object, key: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(key, "a non-empty string", value)
        return value

    def path(self, value: object, key: str, *, kind: str, what: str | None = None) -> Path:
        """Resolve against the config's folder; ``kind`` is "file", "dir" or "any" (must exist); ``what`` the
        expected thing in the message (default: from ``kind``)."""
        text = self.text(value, key)
        try:
            path = Path(text).expanduser()
        except RuntimeError:  # "~name" for a user this machine does not have
            raise self.fail(key, "a path (a leading ~ must name an existing user's home)", text) from None
        path = path if path.is_absolute() else (self.base / path)
        path = path.resolve()
        checks: dict[str, Callable[[Path], bool]] = {"file": Path.is_file, "dir": Path.is_dir, "any": Path.exists}
        if not checks[kind](path):
            what = what or {"file": "an existing file", "dir": "an existing folder", "any": "an existing path"}[kind]
            found = "a folder" if path.is_dir() else "a file" if path.exists() else "nothing there"
            raise ConfigError(f"{self.source}: {key}: expected {what} at {path}, found {found}")
        return path


def key_text(name: object) -> str:
    """A mapping key as it appears in a message: as written when it is plain printable text,
    otherwise quoted and escaped (a key with a newline must not break the one-line message)."""
    text = str(name)
    return text if isinstance(name, str) and text.isprintable() and 0 < len(text) <= 60 else short(name)


def short(value: object, limit: int = 60) -> str:
    """A bounded rendering: reprlib caps the work (never renders the whole value, then cuts)."""
    import reprlib

    r = reprlib.Repr()
    r.maxlist = r.maxdict = 4
    r.maxstring = r.maxother = limit
    r.maxlevel = 2
    return r.repr(value)


class Raw(str):
    """A description of what was found, shown as is (not quoted like a YAML value)."""


def show(value: object) -> str:
    if isinstance(value, Raw):
        return str(value)
    if value is None:
        return "nothing"
    if isinstance(value, str):
        return repr(value) if len(value) <= 200 else short(value, 200)
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return f"a list {short(value)}"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    return short(value)


def range_text(low: float, high: float) -> str:
    if math.isinf(low) and math.isinf(high):
        return "a number"
    if math.isinf(high):
        return f"a number >= {low:g}"
    if math.isinf(low):
        return f"a number <= {high:g}"
    return f"a number between {low:g} and {high:g}"


NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def parse_yaml(source: Path, data: bytes, error: type[Exception] = ConfigError) -> object:
    """The YAML document, alias bombs and duplicate keys refused; problems raise ``error`` naming ``source``
    (the one YAML reader of the package: configs, and YOLO's data.yaml with ``error=DatasetError``)."""
    try:
        loader = StrictLoader(data)
        try:
            root = loader.get_single_node()
            nodes = expanded_nodes(root)
            if nodes > MAX_CONFIG_NODES:
                raise error(
                    f"{source}: expected a config of at most {MAX_CONFIG_NODES:,} YAML values with its aliases expanded, found more "
                    "(anchors and aliases that multiply, such as an alias bomb); reuse a block with one alias per use instead")
            doc = loader.construct_document(root) if root is not None else None
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise error(f"{source}: expected valid YAML, found a syntax error{where}: {problem}") from None
    return doc
