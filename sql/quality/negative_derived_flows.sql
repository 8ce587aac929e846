-- Derived quarter flows below zero: an agency's cumulative report is smaller than the
-- reports it should contain (e.g. H1 < Q1), so the derived quarter cannot be trusted.
with final as (
    select
        agency_code,
        period_code,
        element_code,
        value,
        derivation
    from fct_data_element_value
    where period_year = $year and is_derived and kind = 'flow' and value < 0
)

select * from final
