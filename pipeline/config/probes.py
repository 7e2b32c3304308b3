"""``probes:`` what would fool the model that the evaluation set does not show (DESIGN §11, §15)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipeline.config.reader import NAME_RE, Raw, Reader
from pipeline.records.plain import JsonObject

PROBE_KINDS = ("watermark", "stamp", "noise", "frame")  # kept in step with pipeline.probes.artifacts.BUILTIN (unit test)
PROBE_PLACES = ("hot_spots", "corners", "centre")
PROPERTY_KINDS = ("colour", "brightness", "contrast", "saturation", "sharpness", "noise", "jpeg")  # pipeline.properties.measures.PROPERTIES (unit test)

DEFAULTS: JsonObject = {  # DESIGN §11: what would fool it that the evaluation set does not show
    "enabled": True,  # run the probes stage (artifacts, background swap, properties)
    "samples": 64,  # seeded, correctly classified scored samples, stratified by label
    "artifacts": list(PROBE_KINDS),  # built-in kinds; [] for none
    "overlays": [],  # user images: [{name: vendor-logo, path: logos/vendor.png, size: 0.25, at: [0.56, 0.80]}]
    "places": list(PROBE_PLACES),  # hot_spots = every strategy's hot spot
    "margin": 0.03,  # corners are inset by this share of each side
    "size": 0.4,  # an artifact's width as a share of the input width (height from its aspect)
    "background_swap": True,  # the object on a same-label and an other-label background
    "min_effect": 0.2,  # "fools" when an effect's interval lower bound reaches this
    "properties": list(PROPERTY_KINDS),  # DESIGN §15: cues without a place, edited on the background only; [] for none
    "property_strength": 1.0,  # scales every built-in property edit
    "property_auc": 0.7,  # the data side: a property "tells a class apart" when its AUC's lower bound reaches this (§15)
}
"""The probes section's keys and their defaults (None under a required key)."""


@dataclass(frozen=True)
class OverlayConfig:
    """A user's artifact: an RGBA image ``size`` of the input width wide (aspect kept); ``at`` its
    top-left in relative (x, y), then placed only there."""

    name: str
    path: Path
    size: float = 0.25
    at: tuple[float, float] | None = None


@dataclass(frozen=True)
class ProbesConfig:
    """DESIGN §11; shares are fractions in [0, 1]."""

    enabled: bool = True
    samples: int = 64
    artifacts: tuple[str, ...] = PROBE_KINDS
    overlays: tuple[OverlayConfig, ...] = ()
    places: tuple[str, ...] = PROBE_PLACES
    margin: float = 0.03
    size: float = 0.4
    background_swap: bool = True
    min_effect: float = 0.2
    properties: tuple[str, ...] = PROPERTY_KINDS
    property_strength: float = 1.0
    property_auc: float = 0.7


def name_list(r: Reader, value: object, key: str, options: tuple[str, ...]) -> tuple[str, ...]:
    """A list of distinct option names (possibly empty)."""
    if not isinstance(value, list):
        raise r.fail(key, f"a list of {', '.join(options)}", value)
    out = tuple(r.choice(v, f"{key}[{i}]", options) for i, v in enumerate(value))
    if len(set(out)) != len(out):
        raise r.fail(key, "each name once", Raw(f"duplicates {sorted({v for v in out if out.count(v) > 1})}"))
    return out


def overlay(r: Reader, raw: object, key: str) -> OverlayConfig:
    o = r.mapping(raw, key, {"name": None, "path": None, "size": 0.25, "at": None})
    for k in ("name", "path"):
        if o[k] is None:
            raise r.fail(f"{key}.{k}", "a value (this key is required)", None)
    name = r.text(o["name"], f"{key}.name")
    if not NAME_RE.match(name) or name in PROBE_KINDS:
        raise r.fail(f"{key}.name", f"letters, digits, '.', '_' or '-', not a built-in kind ({', '.join(PROBE_KINDS)})", name)
    path = r.path(o["path"], f"{key}.path", kind="file")
    try:
        from PIL import Image

        with Image.open(path) as img:
            img.verify()
    except Exception as exc:  # Pillow raises many types for a file that is not an image
        raise r.fail(f"{key}.path", "an image file (a PNG with transparency, or any image Pillow reads)",
                     Raw(f"{path.name}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")) from None
    at = o["at"]
    if at is not None and not (isinstance(at, list) and len(at) == 2 and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v < 1 for v in at)):
        raise r.fail(f"{key}.at", "null or [x, y]: the overlay's top-left, relative, each in [0, 1)", at)
    return OverlayConfig(name=name, path=path, size=r.number(o["size"], f"{key}.size", low=0.01, high=1.0),
                         at=None if at is None else (float(at[0]), float(at[1])))


def read_probes(r: Reader, raw: object) -> ProbesConfig:
    p = r.mapping(raw, "probes", DEFAULTS)
    if not isinstance(p["overlays"], list):
        raise r.fail("probes.overlays", "a list of {name, path, size, at} mappings", p["overlays"])
    overlays = tuple(overlay(r, o, f"probes.overlays[{i}]") for i, o in enumerate(p["overlays"]))
    names = [o.name for o in overlays]
    if len(set(names)) != len(names):
        raise r.fail("probes.overlays", "a distinct name per overlay", Raw(f"duplicates {sorted({n for n in names if names.count(n) > 1})}"))
    return ProbesConfig(
        enabled=r.boolean(p["enabled"], "probes.enabled"),
        samples=r.integer(p["samples"], "probes.samples", minimum=2),
        artifacts=name_list(r, p["artifacts"], "probes.artifacts", PROBE_KINDS),
        overlays=overlays,
        places=name_list(r, p["places"], "probes.places", PROBE_PLACES),
        margin=r.number(p["margin"], "probes.margin", low=0.0, high=0.45),
        size=r.number(p["size"], "probes.size", low=0.01, high=1.0),
        background_swap=r.boolean(p["background_swap"], "probes.background_swap"),
        min_effect=r.number(p["min_effect"], "probes.min_effect", low=0.0, high=1.0),
        properties=name_list(r, p["properties"], "probes.properties", PROPERTY_KINDS),
        property_strength=r.number(p["property_strength"], "probes.property_strength", low=0.05, high=2.0),
        property_auc=r.number(p["property_auc"], "probes.property_auc", low=0.5, high=1.0),
    )
