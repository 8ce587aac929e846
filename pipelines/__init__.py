"""CCHC / PAR plan tracking pipeline: workbooks in, curated DuckDB indicator tables out."""
