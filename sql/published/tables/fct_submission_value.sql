-- One row per figure cell of every workbook received (first submissions, resubmissions,
-- rejected files: every version), as read. Built at publish time from the working database's
-- raw_value so that versions of a report can be compared (v_resubmission_change); the
-- agency's free-text note is not published.
-- incremental: submission_id
-- (a publish after one changed workbook rewrites that workbook's rows, not the quarter's)
with cells as (
    select
        submission_id,
        partition_key,
        code,
        raw_text,
        value,
        parse_status,
        sheet,
        cell
    from raw_value
),

final as (
    select
        submission_id,
        partition_key,
        code as element_code,
        raw_text,
        value,
        parse_status,
        sheet,
        cell
    from cells
)

select * from final
