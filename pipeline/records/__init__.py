"""What the stages hand on, typed: summary.json's sections as frozen records (:mod:`.plain` the JSON values and the record
base, :mod:`.probes`, :mod:`.strategies`, :mod:`.gate`, :mod:`.summary`). Below every stage and findings: stages write
these records, findings and the report read them, and none of them imports a stage."""
