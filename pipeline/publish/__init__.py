"""The audit's outputs (DESIGN §5): summary.json from the stages' records, the output files, the output folder's lock."""
