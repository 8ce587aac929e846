-- External indicators (pipelines/external.py): every form file's rows under <raw>/external,
-- rewritten whole on each run (the input is small).

-- One row per row of every external-values form file (valid or not), with provenance.
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

-- One row per external indicator x jurisdiction x level x year in force.
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

-- One row per problem found in an external-values form file.
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
