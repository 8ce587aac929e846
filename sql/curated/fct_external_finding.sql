-- description: One row per problem found in an external-values form file (a row, or the file as a whole).
-- grain: content_hash, row_number?, rule_id, cell?
-- partition: table
-- check: external_form_without_errors | warn | quality/external_form_errors | Every row of the external-values forms is valid (a row with an error is not used).
-- python: pipelines.steps:external_values
create table if not exists fct_external_finding (
    file_name varchar not null,
    content_hash varchar not null,
    sheet varchar,
    cell varchar,
    location varchar,
    row_number bigint,
    rule_id varchar not null,
    severity varchar not null,
    indicator_code varchar,
    jurisdiction_code varchar,
    year varchar,
    value varchar,
    message_vi varchar,
    message_en varchar,
    received_at timestamptz not null
);
