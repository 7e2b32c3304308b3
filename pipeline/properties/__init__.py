"""Cues without a place (DESIGN §15): measures and background-only edits (pure NumPy); the stage."""
