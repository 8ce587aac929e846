-- description: One row per plan target × org unit (or level/jurisdiction aggregate) × period of the target's years that has data, counting only the units in force in that period (a unit that ended hands on to its `successor_code`).
-- grain: plan_id, target_id, scope, org_unit_code, admin_level?, period_code
-- partition: year
-- incremental: org_unit_code
-- references: indicator_code -> dim_indicator.indicator_code
-- references: plan_id -> dim_plan.plan_id
-- python: pipelines.steps:scorecard
create table if not exists fct_target_scorecard (
    plan_id varchar not null,
    target_id varchar not null,
    indicator_code varchar not null,
    target_form varchar not null,
    operator varchar not null,
    target_level varchar not null,
    scope varchar not null,
    org_unit_code varchar not null,
    admin_level varchar,
    period_code varchar not null,
    period_year integer not null,
    value double,
    numerator double,
    denominator double,
    reporting_units integer,
    target_value double,
    target_value_max double,
    final_target_value double,
    deadline_year integer,
    met boolean,
    gap_points double,
    baseline_period varchar,
    baseline_value double,
    required_value double,
    progress_ratio double,
    status varchar not null,
    status_vi varchar,
    projected_value double,
    projected_met boolean,
    source_vi varchar,
    met_rule varchar,
    no_data_reason varchar
);

-- input: parts
-- the agencies' figures of the indicators some target is on (no other row is ever read)
select
    indicator_code,
    org_unit_code as agency_code,
    period_code,
    numerator,
    denominator
from fct_indicator_value
where
    scope = 'agency'
    and period_year between $first_year and $year
    and indicator_code in (select t.indicator from dim_target as t);

-- input: values
-- the element totals baseline reductions are computed from (their indicators' numerators)
select
    agency_code,
    period_code,
    code,
    value,
    kind
from int_element_value
where
    period_year between $first_year and $year
    and code in (
        select i.numerator_code from dim_indicator as i
        where i.method = 'baseline_reduction'
    );

-- input: external
select
    indicator_code,
    jurisdiction_code,
    admin_level,
    year,
    value
from fct_external_value;
