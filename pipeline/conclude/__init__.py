"""What the audit concludes (DESIGN §2, §4, §6): aggregates, trust checks and gate, baseline comparability."""
