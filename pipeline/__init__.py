"""Grad-CAM model audit pipeline: does the classifier look at the object?"""

__version__ = "0.1.0"
