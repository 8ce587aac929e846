-- What each plan's scorecard rows of a year were computed from (pipelines/steps.py: scorecard): a
-- fingerprint of its carriers' figures, the external values, the catalog files and the scorecard's
-- code, and the rows it wrote. A re-run scores again only the plans whose fingerprint changed (or
-- whose rows are not those it wrote); the others keep their rows.
create table if not exists scorecard_state (
    period_year integer not null,
    plan_id varchar not null,
    fingerprint varchar not null,
    rows_written integer not null
);
