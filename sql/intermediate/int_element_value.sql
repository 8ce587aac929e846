-- description: One row per agency x period x data element of the quarter's year: the in-force report windows and the derived quarters.
-- grain: agency_code, period_code, code
-- partition: year
-- incremental: agency_code
-- check: accepted_figures_pass_error_rules | error | python:pipelines.steps:broken_error_rules | The figures in force break no error rule (defence in depth: rejected workbooks never get here).
--
-- One row per agency x period x data element for a year: the in-force report windows
-- (Q1, H1, Q3, Y) and the derived quarters (Q2 = H1 - Q1, Q4 = Y - H1 - Q3 for flows;
-- stocks take the level at the end of the window; means are re-weighted by their weight element).
-- A unit that did not exist yet during an earlier window (opened on 1/7/2025 after the two-tier
-- reform, say) had nothing in it: its missing Q1/H1/Q3 flows count as 0, so its Q4 = Y - Q3.
--
-- An agency's rows depend only on its in-force workbooks of the year, their staged values and
-- the dimension tables. The `fingerprint` input (after the select) sums those up per agency, and a
-- re-run computes only the agencies whose sums changed (docs/models.md, "fingerprint").
with in_force as (
    select
        submission_id,
        agency_code,
        period_code,
        right(period_code, length(period_code) - 5) as period_kind,
        file_name,
        content_hash,
        received_at
    from int_submission_status
    where
        is_in_force and period_year = $year
        -- every agency ($every), or those given ($groups: their fingerprint changed, see below)
        and ($every or list_contains($groups, agency_code))
),

figures as (
    select
        i.agency_code,
        i.period_code,
        i.period_kind,
        v.code,
        e.kind,
        e.weight_code,
        v.value,
        i.submission_id,
        i.file_name,
        i.content_hash,
        v.sheet,
        v.cell,
        i.received_at
    from in_force as i
    inner join stg_value as v on i.submission_id = v.submission_id
    inner join dim_data_element as e on v.code = e.code
    where v.parse_status = 'ok' and v.value is not null
),

repeated as (
    -- an element given on two rows (rare): its first cell counts, found without sorting every row
    select
        agency_code,
        period_code,
        code,
        min(cell) as cell
    from figures
    group by agency_code, period_code, code
    having count(*) > 1
),

reported as (
    select f.*
    from figures as f
    left join repeated as r on f.agency_code = r.agency_code and f.period_code = r.period_code and f.code = r.code
    where r.cell is null or f.cell = r.cell
),

by_element as (
    select
        agency_code,
        code,
        any_value(kind) as kind,
        any_value(weight_code) as weight_code,
        max(value) filter (where period_kind = 'Q1') as q1,
        max(value) filter (where period_kind = 'H1') as h1,
        max(value) filter (where period_kind = 'Q3') as q3,
        max(value) filter (where period_kind = 'Y') as y,
        max(submission_id) filter (where period_kind = 'Q1') as q1_sid,
        max(submission_id) filter (where period_kind = 'H1') as h1_sid,
        max(submission_id) filter (where period_kind = 'Q3') as q3_sid,
        max(submission_id) filter (where period_kind = 'Y') as y_sid
    from reported
    group by agency_code, code
),

opened as (
    select
        org_unit_code as agency_code,
        coalesce(valid_from > make_date($year, 3, 31), false) as after_q1,
        coalesce(valid_from > make_date($year, 6, 30), false) as after_h1,
        coalesce(valid_from > make_date($year, 9, 30), false) as after_q3
    from dim_agency
),

with_weights as (
    select
        b.agency_code,
        b.code,
        b.kind,
        b.weight_code,
        b.y,
        b.q1_sid,
        b.h1_sid,
        b.q3_sid,
        b.y_sid,
        w.y as w_y,
        case when b.q1 is null and o.after_q1 and b.kind <> 'stock' then 0 else b.q1 end as q1,
        case when b.h1 is null and o.after_h1 and b.kind <> 'stock' then 0 else b.h1 end as h1,
        case when b.q3 is null and o.after_q3 and b.kind <> 'stock' then 0 else b.q3 end as q3,
        case when w.q1 is null and o.after_q1 then 0 else w.q1 end as w_q1,
        case when w.h1 is null and o.after_h1 then 0 else w.h1 end as w_h1,
        case when w.q3 is null and o.after_q3 then 0 else w.q3 end as w_q3
    from by_element as b
    left join by_element as w
        on b.agency_code = w.agency_code and b.weight_code = w.code
    left join opened as o on b.agency_code = o.agency_code
),

derived as (
    select
        agency_code,
        $year || '-Q2' as period_code,
        code,
        kind,
        case kind
            when 'flow' then h1 - q1
            when 'stock' then h1
            when 'mean' then (h1 * w_h1 - q1 * w_q1) / nullif(w_h1 - w_q1, 0)
        end as value,
        case kind
            when 'stock' then $year || '-H1'
            else $year || '-H1 - ' || $year || '-Q1'
        end as derivation,
        case kind
            when 'stock' then [h1_sid]
            else list_filter([h1_sid, q1_sid], x -> x is not null)
        end as source_submission_ids
    from with_weights
    where h1 is not null and (kind = 'stock' or q1 is not null)
    union all
    select
        agency_code,
        $year || '-Q4' as period_code,
        code,
        kind,
        case kind
            when 'flow' then y - h1 - q3
            when 'stock' then y
            when 'mean' then (y * w_y - h1 * w_h1 - q3 * w_q3) / nullif(w_y - w_h1 - w_q3, 0)
        end as value,
        case kind
            when 'stock' then $year || '-Y'
            else $year || '-Y - ' || $year || '-H1 - ' || $year || '-Q3'
        end as derivation,
        case kind
            when 'stock' then [y_sid]
            else list_filter([y_sid, h1_sid, q3_sid], x -> x is not null)
        end as source_submission_ids
    from with_weights
    where y is not null and (kind = 'stock' or (h1 is not null and q3 is not null))
),

final as (
    select
        agency_code,
        period_code,
        $year as period_year,
        code,
        kind,
        value,
        false as is_derived,
        null::varchar as derivation,
        [submission_id] as source_submission_ids,
        submission_id,
        file_name,
        content_hash,
        sheet,
        cell,
        received_at
    from reported
    union all
    select
        agency_code,
        period_code,
        $year as period_year,
        code,
        kind,
        value,
        true as is_derived,
        derivation,
        source_submission_ids,
        null::varchar as submission_id,
        null::varchar as file_name,
        null::varchar as content_hash,
        null::varchar as sheet,
        null::varchar as cell,
        null::timestamptz as received_at
    from derived
    where value is not null
)

select * from final;

-- input: fingerprint
-- per agency: its in-force workbooks of the year and, per workbook, the row count and hash sum of
-- its staged values (a workbook's staged values depend on its content and the reader), of the
-- columns the select above reads (the labels and notes of a year's values: half the hashing)
with in_force as (
    select
        submission_id,
        agency_code,
        period_code,
        file_name,
        content_hash,
        received_at
    from int_submission_status
    where is_in_force and period_year = $year
),

staged as (
    select
        v.submission_id,
        count(*) as value_rows,
        sum(hash(v.code, v.value, v.parse_status, v.sheet, v.cell)::hugeint) as value_hash
    from stg_value as v
    where v.submission_id in (select i.submission_id from in_force as i)
    group by v.submission_id
)

select
    i.agency_code,
    count(*) as workbooks,
    sum(
        hash(i.submission_id, i.period_code, i.file_name, i.content_hash, i.received_at, s.value_rows, s.value_hash)::hugeint
    ) as content_hash
from in_force as i
left join staged as s on i.submission_id = s.submission_id
group by i.agency_code
