"""Evidence beyond the heatmap (DESIGN §6): interventions, the trust checks, the randomisation check and the intervals every number carries."""
