-- The scorecard's figures summed per year (pipelines/steps.py, `_group_fingerprints`): per input
-- (parts, values) and year, the row count and hash sum of the input's rows of each plan's carriers
-- and key (an indicator, or a reduction's numerator element). scorecard_sums_state keeps, per input
-- and year, what they were summed from: the write token of the input table's slice of that year
-- (incremental_state) and the catalog, code and SQL then. A run sums again only the years whose
-- token changed (a new quarter: its own year), not the ten years before it.
create table if not exists scorecard_sums (
    input varchar not null,
    year integer not null,
    plan_id varchar not null,
    key varchar not null,
    n bigint not null,
    h hugeint not null
);

create table if not exists scorecard_sums_state (
    input varchar not null,
    year integer not null,
    token varchar not null
);
