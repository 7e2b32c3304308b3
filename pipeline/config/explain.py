"""``explain:`` the CAM method and what each sample explains (DESIGN §4)."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.config.reader import Reader
from pipeline.records.plain import JsonObject

TARGETS = ("predicted", "true")
CAM_METHODS = ("gradcam", "gradcam++", "hirescam", "layercam")  # kept in step with pipeline.explain.cams.METHODS (unit test)

DEFAULTS: JsonObject = {
    "method": "gradcam",
    "target": "predicted",
    "batch_size": 32,  # images per compiled Grad-CAM step; the results do not depend on it, memory does
    "jit_compile": False,  # XLA; scores stay within 1e-5 of the default (benchmarks/RESULTS.md)
    "compare_method": None,  # a second CAM method from the same forward/backward pass
}
"""The explain section's keys and their defaults (None under a required key)."""


@dataclass(frozen=True)
class ExplainConfig:
    method: str
    target: str  # "predicted" | "true"
    batch_size: int
    jit_compile: bool
    compare_method: str | None = None


def read_explain(r: Reader, raw: object) -> ExplainConfig:
    e = r.mapping(raw, "explain", DEFAULTS)
    return ExplainConfig(
        method=r.choice(e["method"], "explain.method", CAM_METHODS),
        # YAML reads an unquoted `target: true` as a boolean; the design spells the option `true`.
        target=r.choice("true" if e["target"] is True else e["target"], "explain.target", TARGETS),
        batch_size=r.integer(e["batch_size"], "explain.batch_size", minimum=1),
        jit_compile=r.boolean(e["jit_compile"], "explain.jit_compile"),
        compare_method=None if e["compare_method"] is None else r.choice(e["compare_method"], "explain.compare_method", CAM_METHODS),
    )
