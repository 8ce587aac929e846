-- The figures in force of a year's report windows, one "submission" per agency and window, for
-- re-running the error rules on them (int_element_value.accepted_figures_pass_error_rules).
with final as (
    select
        agency_code || ' ' || period_code as submission_id,
        code,
        value
    from int_element_value
    where
        period_year = $year and not is_derived
        -- every agency ($every), or those whose rows the last write changed ($agencies)
        and ($every or list_contains($agencies, agency_code))
)

select * from final
