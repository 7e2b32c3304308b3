"""Plain data: what JSON holds, and frozen records that read themselves from it and write themselves back.

A record's fields are its JSON keys (a field's ``metadata["key"]`` when the key is no Python name, e.g. ``class``), in the
order summary.json writes them. Reading is forgiving the way a summary written by an older version needs: a missing or
null number is NaN, a missing text "", a missing list empty — so a finding never meets ``None`` where it reads a number.
"""

from __future__ import annotations

import math
from dataclasses import MISSING, fields
from typing import Callable, ClassVar, Mapping, TypeVar, Union

Json = Union[None, bool, int, float, str, list["Json"], dict[str, "Json"]]
"""A value JSON can hold (summary.json, a section of it, a record's form)."""

JsonObject = dict[str, Json]
"""One JSON object: a summary section, a row of probes.csv, a config section as resolved."""


def real(v: object) -> float:
    """A number, NaN when missing or not a number (JSON has no NaN: summary.json writes it as null)."""
    try:
        return float(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan


def maybe_real(v: object) -> float | None:
    """A number, or None when missing (for values whose absence means "not tested", not "undefined")."""
    return None if v is None else real(v)


def whole(v: object) -> int:
    """An integer, -1 when missing or not a number."""
    f = real(v)
    return -1 if math.isnan(f) else int(f)


def text(v: object) -> str:
    """A string, "" when missing."""
    return "" if v is None else str(v)


def flag(v: object) -> bool:
    return bool(v)


def texts(v: object) -> tuple[str, ...]:
    return tuple(str(x) for x in v) if isinstance(v, (list, tuple)) else ()


def wholes(v: object) -> tuple[int, ...]:
    return tuple(whole(x) for x in v) if isinstance(v, (list, tuple)) else ()


def reals(v: object) -> tuple[float, ...]:
    return tuple(real(x) for x in v) if isinstance(v, (list, tuple)) else ()


READERS: dict[str, Callable[[object], object]] = {
    "float": real, "float | None": maybe_real, "int": whole, "int | None": lambda v: None if v is None else whole(v), "str": text, "bool": flag, "str | None": lambda v: None if v is None else str(v),
    "tuple[str, ...]": texts, "tuple[int, ...]": wholes, "tuple[float, ...]": reals,
    "tuple[float, ...] | None": lambda v: None if v is None else reals(v),
}
"""How a field of each annotation reads its JSON value (records use ``from __future__ import annotations``: strings)."""


def written(value: object) -> Json:
    """A field's JSON form: tuples become lists, records their objects; numbers, text, None as they are."""
    if isinstance(value, Record):
        return value.to_json()
    if isinstance(value, (tuple, list)):
        return [written(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): written(v) for k, v in value.items()}
    return value  # type: ignore[return-value]


R = TypeVar("R", bound="Record")


class Record:
    """Base of the frozen dataclasses summary.json holds: :meth:`of` reads one from its JSON object, :meth:`to_json` writes it.

    Fields whose annotation :data:`READERS` does not know (nested records, mappings) are read by the subclass's
    ``NESTED`` readers."""

    NESTED: ClassVar[Mapping[str, Callable[[object], object]]] = {}

    @classmethod
    def of(cls: type[R], data: Mapping[str, object] | None) -> R:
        data = data or {}
        values = {}
        for f in fields(cls):  # type: ignore[arg-type]
            key = f.metadata.get("key", f.name)
            if key not in data and (f.default is not MISSING or f.default_factory is not MISSING):
                continue
            read = cls.NESTED.get(f.name) or READERS[str(f.type)]
            values[f.name] = read(data.get(key))
        return cls(**values)

    def to_json(self) -> JsonObject:
        return {f.metadata.get("key", f.name): written(getattr(self, f.name)) for f in fields(self)}  # type: ignore[arg-type]


def records_of(kind: type[R]) -> Callable[[object], tuple[R, ...]]:
    """A reader of a JSON list of ``kind`` objects."""
    return lambda v: tuple(kind.of(x) for x in v) if isinstance(v, list) else ()  # type: ignore[arg-type]


def record_or_none(kind: type[R]) -> Callable[[object], R | None]:
    """A reader of a JSON object of ``kind`` that may be null."""
    return lambda v: kind.of(v) if isinstance(v, Mapping) else None


def table(v: object) -> dict[str, dict[str, float]]:
    """``{name: {metric: value}}`` (aggregates per class), numbers read with :func:`real`."""
    if not isinstance(v, Mapping):
        return {}
    return {str(k): {str(m): real(x) for m, x in row.items()} for k, row in v.items() if isinstance(row, Mapping)}


def numbers(v: object) -> dict[str, float]:
    """``{metric: value}``, numbers read with :func:`real`."""
    return {str(k): real(x) for k, x in v.items()} if isinstance(v, Mapping) else {}
