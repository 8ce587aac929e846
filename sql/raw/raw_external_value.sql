-- description: One row per row of every external-values form file under <raw>/external (valid or not), with file, content hash, sheet, cell and received time.
-- grain: content_hash, sheet, row_number
-- partition: table
-- python: pipelines.steps:external_values
create table if not exists raw_external_value (
    file_name varchar not null,
    content_hash varchar not null,
    sheet varchar,
    row_number bigint not null,
    cell varchar,
    indicator_code varchar,
    jurisdiction_code varchar,
    admin_level varchar,
    year bigint,
    value_text varchar,
    value double,
    source_document varchar,
    note varchar,
    is_valid boolean not null,
    received_at timestamptz not null
);
