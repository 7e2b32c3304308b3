"""Grad-CAM model audit pipeline: does the classifier look at the object?

``from pipeline import audit`` — the Python API (:mod:`pipeline.api`); the CLI is ``python -m pipeline``.
"""

from pipeline.api import audit
from pipeline.errors import AuditError, ConfigError, DatasetError, ModelError

__version__ = "0.1.0"
__all__ = ["audit", "AuditError", "ConfigError", "DatasetError", "ModelError", "__version__"]
