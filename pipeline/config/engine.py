"""``engine:`` local or Ray (DESIGN §7)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from pipeline.config.reader import Reader
from pipeline.records.plain import JsonObject

ENGINES = ("local", "ray")
ADDRESS_RE = re.compile(r"^(auto|(ray://)?[A-Za-z0-9_.-]+:\d{1,5})$")

DEFAULTS: JsonObject = {
    "kind": "local",  # local (one process, tf.data) | ray (Ray Data actor pool; pip install '.[ray]')
    "address": None,  # ray: null = start a local cluster; "auto" = join RAY_ADDRESS / a running one; "host:port"
    "workers": 1,  # ray: actors
    "cpus_per_worker": 1,  # ray: CPUs per actor (fractions allowed); TensorFlow's thread pools follow it
    "gpus_per_worker": 0,  # ray: GPUs each worker actor asks for (fractions allowed)
}
"""The engine section's keys and their defaults (None under a required key)."""


@dataclass(frozen=True)
class EngineConfig:
    kind: str  # "local" | "ray"
    address: str | None  # ray: None starts a local cluster; "auto"; "host:port"
    workers: int
    cpus_per_worker: float
    gpus_per_worker: float


def read_engine(r: Reader, raw: object) -> EngineConfig:
    e = r.mapping(raw, "engine", DEFAULTS)
    address = e["address"]
    if address is not None and not (isinstance(address, str) and ADDRESS_RE.match(address)):
        raise r.fail("engine.address", "null (start a local cluster), auto, or host:port", address)
    return EngineConfig(
        kind=r.choice(e["kind"], "engine.kind", ENGINES),
        address=address,
        workers=r.integer(e["workers"], "engine.workers", minimum=1),
        cpus_per_worker=r.number(e["cpus_per_worker"], "engine.cpus_per_worker", low=0.01, high=1024),
        gpus_per_worker=r.number(e["gpus_per_worker"], "engine.gpus_per_worker", low=0, high=64),
    )
