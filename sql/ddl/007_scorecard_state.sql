-- scorecard_state kept, per year and plan, what the plan's scorecard rows were computed from. The
-- scorecard keeps those fingerprints in group_state now (008), as the SQL models with a
-- `fingerprint` input do (pipelines/incremental.py): the old table goes.
drop table if exists scorecard_state;
