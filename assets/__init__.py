"""Dagster assets, one module per layer: raw, staging, intermediate, curated, delivery."""
