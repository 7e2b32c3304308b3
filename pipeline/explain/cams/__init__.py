"""CAM method registry: name -> class. Importing a method module needs TensorFlow."""

from __future__ import annotations

METHODS = {
    "gradcam": "pipeline.explain.cams.gradcam:GradCAM",
    "gradcam++": "pipeline.explain.cams.gradcampp:GradCAMPlusPlus",
    "hirescam": "pipeline.explain.cams.hirescam:HiResCAM",
    "layercam": "pipeline.explain.cams.layercam:LayerCAM",
}


def get_method(name: str):
    """Instantiate the registered method ``name`` (names are validated by the config)."""
    import importlib

    module, cls = METHODS[name].split(":")
    return getattr(importlib.import_module(module), cls)()
