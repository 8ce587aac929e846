-- description: One row per open alert: a late or missing report, an error of a rejected workbook not yet replaced by an accepted one, a warning on a workbook in force.
-- grain: alert_id
-- partition: quarter
-- unassigned: yes
-- incremental: alert_id
-- (no reference check on agency_code: a workbook naming an unknown agency is rejected and stays on record with the code it declared)
--
-- One row per open alert of a partition: late, missing, rejected, warning; with who must act.
-- A rejection stays open until the agency sends an accepted workbook received after it.
with completeness as (
    select
        agency_code,
        period_code,
        authority,
        due_at,
        due_date,
        first_received_at,
        days_late,
        days_overdue,
        timeliness_status
    from fct_reporting_completeness
    where partition_key = $partition_key
),

submissions as (
    select
        submission_id,
        agency_code,
        period_code,
        file_name,
        received_at,
        status,
        validation_status,
        reporting_authority
    from int_submission_status
    where partition_key = $partition_key
),

last_accepted as (
    select
        agency_code,
        period_code,
        max(received_at) as accepted_at
    from submissions
    where validation_status = 'accepted'
    group by agency_code, period_code
),

findings as (
    select
        submission_id,
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

alerts as (
    select
        'late' as alert_type,
        'warning' as severity,
        c.agency_code,
        c.period_code,
        c.authority,
        null::varchar as submission_id,
        null::varchar as file_name,
        'LATE' as rule_id,
        null::varchar as location,
        null::varchar as detail,
        'Báo cáo ' || c.period_code || ' nộp trễ ' || c.days_late || ' ngày (hạn ' || strftime(c.due_date, '%d/%m/%Y') || ').' as message_vi,
        'Report ' || c.period_code || ' received ' || c.days_late || ' day(s) late.' as message_en
    from completeness as c
    where c.timeliness_status = 'late'
    union all
    select
        'missing' as alert_type,
        'error' as severity,
        c.agency_code,
        c.period_code,
        c.authority,
        null as submission_id,
        null as file_name,
        'MISSING' as rule_id,
        null as location,
        null as detail,
        'Chưa nhận được báo cáo ' || c.period_code || ' (quá hạn ' || c.days_overdue || ' ngày, hạn ' || strftime(c.due_date, '%d/%m/%Y') || ').' as message_vi,
        'Report ' || c.period_code || ' not received (' || c.days_overdue || ' day(s) overdue).' as message_en
    from completeness as c
    where c.timeliness_status = 'missing'
    union all
    -- errors of rejected workbooks not yet replaced by an accepted one; warnings of workbooks in force
    select
        case when f.severity = 'error' then 'rejected' else 'warning' end as alert_type,
        f.severity,
        s.agency_code,
        s.period_code,
        s.reporting_authority as authority,
        s.submission_id,
        s.file_name,
        f.rule_id,
        case when f.sheet <> '' and f.cell <> '' then f.sheet || '!' || f.cell else f.sheet end as location,
        -- two findings of one rule at one place differ by what they name (e.g. the missing fields)
        concat_ws('|', f.code, f.value) as detail,
        f.message_vi,
        f.message_en
    from submissions as s
    inner join findings as f on s.submission_id = f.submission_id
    left join last_accepted as a on s.agency_code = a.agency_code and s.period_code = a.period_code
    where
        (
            f.severity = 'error' and s.status = 'rejected'
            and (a.accepted_at is null or a.accepted_at < s.received_at)
        )
        or (f.severity = 'warning' and s.status = 'in_force')
),

final as (
    select
        md5(concat_ws('|', a.alert_type, a.agency_code, a.period_code, a.submission_id, a.rule_id, a.location, a.detail)) as alert_id,
        $partition_key as partition_key,
        a.alert_type,
        a.severity,
        a.agency_code,
        u.name_vi as agency_name,
        a.period_code,
        a.authority,
        a.submission_id,
        a.file_name,
        a.rule_id,
        a.location,
        a.message_vi,
        a.message_en,
        a.agency_code as act_by_org_unit,
        (
            select string_agg(c.email, ', ' order by c.email)
            from dim_contact as c
            where c.org_unit_code = a.agency_code and c.role = 'submitter'
        ) as act_by_email,
        (
            select string_agg(c.email, ', ' order by c.email)
            from dim_contact as c
            inner join dim_agency as j on c.org_unit_code = j.jurisdiction_code
            where j.org_unit_code = a.agency_code and c.role = 'par_office'
        ) as par_office_email,
        cast($as_of as timestamptz) as raised_as_of
    from alerts as a
    left join dim_agency as u on a.agency_code = u.org_unit_code
)

select * from final
