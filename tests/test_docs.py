"""docs/ stays true to the code: every curated column is in the data dictionary (read from the
database's own catalog by `python -m pipelines describe`), and the data dictionary is the one
generated from sql/published/model.yaml."""

import json
import re
import subprocess
import sys

import pytest

from pipelines.warehouse import Warehouse
from tests.conftest import REPO, fill_an_empty_quarter


@pytest.mark.slow  # builds and publishes a whole database: the full tier
def test_every_curated_column_is_documented(tmp_path, catalog):
    db = tmp_path / "docs.duckdb"
    with Warehouse(db).connect() as con:
        fill_an_empty_quarter(con, catalog)  # an empty quarter still creates every curated table from its SQL
    text = (REPO / "docs" / "data_dictionary.md").read_text(encoding="utf-8")
    sections = {m.group(1): m.start() for m in re.finditer(r"^### (\w+)$", text, flags=re.M)}
    # describe runs in its own interpreter (the CLI), as an operator would run it
    out = subprocess.run(
        [sys.executable, "-m", "pipelines", "describe", "--json", "--database", str(db)],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    )
    tables = {
        t: [c["name"] for c in (cols["columns"] if isinstance(cols, dict) else cols)]
        for t, cols in json.loads(out.stdout).items()
    }
    curated = list(tables)
    assert len(curated) >= 17
    missing = []
    for table in curated:
        assert table in sections, f"{table} has no section in docs/data_dictionary.md"
        start = sections[table]
        end = min([p for p in sections.values() if p > start], default=len(text))
        body = text[start:end]
        missing += [f"{table}.{c}" for c in tables[table] if f"| {c} |" not in body]
    assert missing == []


def test_the_data_dictionary_is_up_to_date_with_the_model():
    from pipelines.model_docs import load_model, render_markdown

    text = (REPO / "docs" / "data_dictionary.md").read_text(encoding="utf-8")
    assert text == render_markdown(load_model()), (
        "docs/data_dictionary.md differs from sql/published/model.yaml: edit the YAML and run python -m pipelines.model_docs"
    )
