-- description: One row per finding (broken rule or read problem) per workbook.
-- grain: submission_id, source, rule_id, sheet?, cell?, element_code?, value?
-- partition: quarter
-- unassigned: yes
-- incremental: submission_id
-- per_group: yes
with findings as (
    select
        submission_id,
        partition_key,
        source,
        rule_id,
        severity,
        sheet,
        cell,
        code,
        value,
        message_vi,
        message_en
    from int_finding
    where partition_key = $partition_key
),

submissions as (
    select
        submission_id,
        agency_code,
        period_code,
        file_name,
        received_at,
        status
    from int_submission_status
    where partition_key = $partition_key
),

final as (
    select
        f.submission_id,
        f.partition_key,
        s.agency_code,
        s.period_code,
        s.file_name,
        s.received_at,
        s.status as submission_status,
        f.source,
        f.rule_id,
        f.severity,
        f.sheet,
        f.cell,
        case when f.sheet <> '' and f.cell <> '' then f.sheet || '!' || f.cell else f.sheet end as location,
        f.code as element_code,
        f.value,
        f.message_vi,
        f.message_en
    from findings as f
    inner join submissions as s on f.submission_id = s.submission_id
)

select * from final
