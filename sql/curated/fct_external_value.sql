-- description: One row per external indicator × jurisdiction × level × year in force.
-- grain: indicator_code, jurisdiction_code, year, admin_level?
-- partition: table
-- references: indicator_code -> dim_indicator.indicator_code
-- references: jurisdiction_code -> dim_agency.org_unit_code
-- python: pipelines.steps:external_values
create table if not exists fct_external_value (
    indicator_code varchar not null,
    jurisdiction_code varchar not null,
    admin_level varchar not null,
    year bigint not null,
    value double not null,
    unit varchar,
    source_document varchar not null,
    note varchar,
    file_name varchar not null,
    content_hash varchar not null,
    sheet varchar,
    cell varchar,
    received_at timestamptz not null,
    files_on_record bigint not null
);
