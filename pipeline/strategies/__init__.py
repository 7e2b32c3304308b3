"""Where the model looks instead (DESIGN §10, §12): atlas, SpRAy strategies, hot spots and what they hold, the causal tests; the stage."""
