-- description: One row per figure cell of the quarter's workbooks, typed, with its data element kind.
-- grain: submission_id, sheet, cell
-- partition: quarter
-- incremental: submission_id
-- per_group: yes
-- unassigned: yes
with cells as (
    select
        submission_id,
        partition_key,
        code,
        raw_text,
        value,
        parse_status,
        is_percent,
        sheet,
        cell,
        row_label,
        unit,
        note
    from raw_value
    where partition_key = $partition_key
),

elements as (
    select
        code,
        kind,
        value_type,
        weight_code
    from dim_data_element
),

final as (
    select
        c.submission_id,
        c.partition_key,
        c.code,
        e.code is not null as is_known_code,
        e.kind,
        e.value_type,
        c.raw_text,
        c.value,
        c.parse_status,
        c.is_percent,
        c.sheet,
        c.cell,
        c.row_label,
        c.note
    from cells as c
    left join elements as e on c.code = e.code
)

select * from final
