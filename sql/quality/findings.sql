-- The quarter's findings of one severity ($severity: error = rejected workbooks, warning), one
-- row per finding with the workbook, the place and the message.
with findings as (
    select
        submission_id,
        partition_key,
        rule_id,
        severity,
        sheet,
        cell,
        value,
        message_vi
    from int_finding
    where partition_key = $partition_key and severity = $severity
),

submissions as (
    select
        submission_id,
        partition_key,
        declared_agency_code,
        file_name
    from raw_submission
    where partition_key = $partition_key
),

final as (
    select
        s.declared_agency_code as agency_code,
        s.file_name,
        case when f.cell <> '' then f.sheet || '!' || f.cell else f.sheet end as location,
        f.rule_id,
        f.value,
        f.message_vi
    from findings as f
    inner join submissions as s on f.submission_id = s.submission_id and f.partition_key = s.partition_key
)

select * from final
order by file_name, rule_id
