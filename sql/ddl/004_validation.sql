-- Which workbooks of a slice were validated, and under which rules (RuleEngine.version). A re-run
-- keeps the workbook-rule findings (value, duplicate and compare rules) of a workbook validated
-- before under the same rules: its submission_id is its content (pipelines/steps.py: validate).
-- cohort_fingerprint: what the workbook's cohort (its jurisdiction and level: the peer rules' reach)
-- was validated from; a workbook whose cohort has the same fingerprint keeps all its rule findings.
create table if not exists validation_state (
    partition_key varchar not null,
    submission_id varchar not null,
    rules_version varchar not null,
    cohort_fingerprint varchar
);
