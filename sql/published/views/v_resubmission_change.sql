-- One row per figure that differs between a workbook and the previous version of the same
-- report (same agency and report window, by time received): changed, added or removed.
-- The first version is the first submission; each later file is a resubmission.
with versions as (
    select
        submission_id,
        agency_code,
        period_code,
        file_name,
        received_at,
        status,
        row_number() over (
            partition by agency_code, period_code order by received_at, submission_id
        ) as version,
        lag(submission_id) over (
            partition by agency_code, period_code order by received_at, submission_id
        ) as previous_submission_id
    from fct_submission
    where agency_code is not null and period_code is not null
),

figures as (
    select
        submission_id,
        element_code,
        arg_min(value, sheet || '!' || cell) as value,
        arg_min(raw_text, sheet || '!' || cell) as raw_text,
        min(sheet || '!' || cell) as location
    from fct_submission_value
    group by submission_id, element_code
),

pairs as (
    select
        v.agency_code,
        v.period_code,
        v.version,
        v.previous_submission_id,
        p.file_name as previous_file_name,
        p.received_at as previous_received_at,
        p.status as previous_status,
        v.submission_id,
        v.file_name,
        v.received_at,
        v.status
    from versions as v
    inner join versions as p on v.previous_submission_id = p.submission_id
),

pair_elements as (
    select distinct
        s.submission_id,
        f.element_code
    from pairs as s
    inner join figures as f on f.submission_id in (s.submission_id, s.previous_submission_id)
),

compared as (
    select
        s.agency_code,
        s.period_code,
        s.version,
        s.previous_submission_id,
        s.previous_file_name,
        s.previous_received_at,
        s.previous_status,
        s.submission_id,
        s.file_name,
        s.received_at,
        s.status,
        pe.element_code,
        o.value as previous_value,
        o.raw_text as previous_text,
        n.value,
        n.raw_text,
        coalesce(n.location, o.location) as location
    from pairs as s
    inner join pair_elements as pe on s.submission_id = pe.submission_id
    left join figures as o on s.previous_submission_id = o.submission_id and pe.element_code = o.element_code
    left join figures as n on s.submission_id = n.submission_id and pe.element_code = n.element_code
),

final as (
    select
        c.agency_code,
        a.name_vi as agency_name_vi,
        a.name_en as agency_name_en,
        c.period_code,
        c.version,
        c.element_code,
        e.name_vi as element_name_vi,
        e.name_en as element_name_en,
        e.unit,
        c.previous_value,
        c.value,
        c.value - c.previous_value as difference,
        case
            when c.previous_value is null and c.previous_text is null then 'added'
            when c.value is null and c.raw_text is null then 'removed'
            else 'changed'
        end as change,
        case
            when c.previous_value is null and c.previous_text is null then 'Bổ sung'
            when c.value is null and c.raw_text is null then 'Bỏ'
            else 'Thay đổi'
        end as change_vi,
        c.previous_text,
        c.raw_text,
        c.location,
        c.previous_submission_id,
        c.previous_file_name,
        c.previous_received_at,
        c.previous_status,
        c.submission_id,
        c.file_name,
        c.received_at,
        c.status
    from compared as c
    left join dim_agency as a on c.agency_code = a.org_unit_code
    left join dim_data_element as e on c.element_code = e.code
    where c.previous_value is distinct from c.value or c.previous_text is distinct from c.raw_text
)

select * from final
order by agency_code, period_code, version, element_code
