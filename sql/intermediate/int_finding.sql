-- description: One row per finding per workbook of the quarter: read problems and broken rules.
-- grain: submission_id, source, rule_id, sheet?, cell?, code?, value?
-- partition: quarter
-- unassigned: yes
-- incremental: submission_id
-- check: no_rejected_workbooks | warn | quality/findings(severity=error) | No workbook of the quarter breaks an error rule (rejected workbooks are listed).
-- check: no_warnings | warn | quality/findings(severity=warning) | No workbook of the quarter raises a warning (late figures, outliers, implausible means).
-- python: pipelines.steps:validate
create table if not exists int_finding (
    submission_id varchar not null,
    partition_key varchar not null,
    source varchar not null,
    rule_id varchar not null,
    severity varchar not null,
    sheet varchar,
    cell varchar,
    code varchar,
    value varchar,
    message_vi varchar,
    message_en varchar
);

-- input: submissions
select * from raw_submission
where partition_key = $partition_key;

-- input: values
-- only the columns the rules read: a national quarter's 300,000 values come out of DuckDB twice
-- as fast without the labels, units and notes, and 2.4 x as fast again without the sheet, the cell
-- and the text as typed, which the `places` input gives for the rows a finding names (by
-- value_row: raw_value's rowid); all the slice's workbooks ($every) or those of the cohorts
-- validated again ($sids)
with wanted as (select unnest($sids::varchar[]) as submission_id)

select
    v.rowid as value_row,
    v.submission_id,
    v.code,
    v.value,
    v.parse_status
from raw_value as v
where
    v.partition_key = $partition_key
    and ($every or v.submission_id in (select w.submission_id from wanted as w));

-- input: places
-- where the values given ($rows: their value_row) sit, and their text as typed
select
    v.rowid as value_row,
    v.sheet,
    v.cell,
    v.raw_text
from raw_value as v
where v.rowid in (select unnest($rows::bigint[]));

-- input: read_findings
select * from raw_read_finding
where partition_key = $partition_key;

-- input: on_record (lagged)
-- the slice's findings from the last run, of the workbooks validated then under the same rules
select f.*
from int_finding as f
where
    f.partition_key = $partition_key
    and f.source = 'rule'
    and f.submission_id in (
        -- $version is a parameter (RuleEngine.version), not a column
        select v.submission_id from validation_state as v
        where v.partition_key = $partition_key and v.rules_version = $version  -- noqa: RF02
    );

-- input: validated (lagged)
select
    submission_id,
    cohort_fingerprint
from validation_state
where partition_key = $partition_key and rules_version = $version;

-- input: history (lagged)
-- the report windows that ended before the collected one ($before = year * 12 + its last month),
-- of every agency ($every) or of the agencies given ($agencies); pipelines.steps.validate also sums
-- it up per agency (row count and hash sum) for the cohorts' fingerprints
with wanted as (select unnest($agencies::varchar[]) as agency_code)

select
    h.agency_code,
    h.period_code,
    h.code,
    h.value,
    h.kind
from int_element_value as h
where
    not h.is_derived
    and h.period_year between $first_year and $year
    and h.period_year * 12 + case right(h.period_code, 2) when 'Q1' then 3 when 'H1' then 6 when 'Q3' then 9 else 12 end
    < $before
    and ($every or h.agency_code in (select w.agency_code from wanted as w));
