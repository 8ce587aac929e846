-- Rows of the external-values forms with an error (such a row is not used).
with final as (
    select
        file_name,
        location,
        rule_id,
        value,
        message_vi,
        row_number
    from fct_external_finding
)

select * from final
order by file_name, row_number
