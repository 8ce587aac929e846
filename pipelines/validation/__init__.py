"""Validation rules (catalog/validation_rules.csv, plus one rule per share indicator) as expectations.

Rules are data, DHIS2-style: left side, operator, right side, severity. Each rule becomes
a check column that pandas computes plus one engine-neutral expectation
(pipelines/expectations.py). An expectation engine returns every offending row (no cap),
which we turn into addressable findings: agency, period, file, sheet, cell, rule, values,
severity, Vietnamese + English message.

One module per rule kind: values.py (`value_check`, `duplicate`), compare.py (`compare`, and
the rules derived from share indicators), submission.py (`submission_check`), outliers.py
(`outlier`: peers, own history, stock jumps); engine.py compiles them (`RuleEngine`).

The default engine is vectorised pandas: the expectations only test booleans and pairs
already computed here, and `import great_expectations` alone costs 4-5 s on every run.
Great Expectations 1.x stays available as the `gx` engine (CCHC_VALIDATION_ENGINE=gx, or
RuleEngine(catalog, engine="gx")); tests/test_validation_engines.py proves the two give
identical findings.
"""

from pipelines.expectations import run_suite
from pipelines.validation.common import FINDING_COLUMNS
from pipelines.validation.compare import ratio_rules
from pipelines.validation.engine import RuleEngine, ValidationInput, rule_engine
from pipelines.validation.outliers import History, modified_z, modified_z_by_group, own_history_z, stock_change_pct

__all__ = [
    "FINDING_COLUMNS",
    "History",
    "RuleEngine",
    "ValidationInput",
    "modified_z",
    "modified_z_by_group",
    "own_history_z",
    "ratio_rules",
    "rule_engine",
    "run_suite",
    "stock_change_pct",
]
