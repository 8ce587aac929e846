-- One row per agency x period x data element for a year: the in-force report windows
-- (Q1, H1, Q3, Y) and the derived quarters (Q2 = H1 - Q1, Q4 = Y - H1 - Q3 for flows;
-- stocks take the level at the end of the window; means are re-weighted by their weight element).
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
    where is_in_force and period_year = $year
),

reported as (
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
    qualify row_number() over (partition by i.agency_code, i.period_code, v.code order by v.cell) = 1
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

with_weights as (
    select
        b.*,
        w.q1 as w_q1,
        w.h1 as w_h1,
        w.q3 as w_q3,
        w.y as w_y
    from by_element as b
    left join by_element as w
        on b.agency_code = w.agency_code and b.weight_code = w.code
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
            else [h1_sid, q1_sid]
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
            else [y_sid, h1_sid, q3_sid]
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

select * from final
