"""The plan catalog: every seed's targets load, name known indicators and levels, and trace to the seed text."""

from pathlib import Path

from pipelines.catalog import TARGET_LEVELS
from pipelines.targets import Target, ramp_value

SEEDS = Path(__file__).resolve().parent.parent / "catalog" / "plans" / "seeds"

# Quantitative targets per seed, counted by reading each seed line by line: 000 Ngã Năm, Appendix I
# (two phases, the digitization ramp split town/commune, blank cells skipped); 001 Tây Hòa, section II
# plus III.6 and the appendix; 002 Minh Đức, II.1-II.7 plus the appendix; 003 Cần Thơ, points 1-6, III
# and the appendix; 004 Trần Đề, the two "tiếp tục đạt 100%" legal-document targets.
EXPECTED_COUNTS = {
    "ngan-nam-2021-2030": 52,
    "tay-hoa-2021-2025": 30,
    "minh-duc-2025": 37,
    "can-tho-2022": 36,
    "tran-de-2024": 2,
}


def test_every_seed_plan_is_in_the_catalog(catalog):
    assert set(catalog.plans["plan_id"]) == set(EXPECTED_COUNTS)
    assert set(catalog.plans["issuer"]) <= set(catalog.org_units["code"])


def test_target_counts_per_seed(catalog):
    counts = catalog.targets.groupby("plan_id").size().to_dict()
    assert counts == EXPECTED_COUNTS


def test_targets_name_known_indicators_levels_and_phases(catalog):
    assert set(catalog.targets["indicator"]) <= set(catalog.indicators["code"])
    assert set(catalog.targets["level"]) <= set(TARGET_LEVELS)
    assert (catalog.targets["start_year"] <= catalog.targets["deadline_year"]).all()


def test_every_target_quotes_its_seed_verbatim(catalog):
    texts = {path.name: path.read_text(encoding="utf-8") for path in SEEDS.glob("*.txt")}
    seed_of = dict(zip(catalog.plans["plan_id"], catalog.plans["seed"], strict=True))
    missing = [
        (t["plan_id"], t["target_id"])
        for t in catalog.targets.to_dict("records")
        if not t["source_vi"] or t["source_vi"] not in texts[seed_of[t["plan_id"]]]
    ]
    assert missing == []


def test_ramp_values_match_their_rule(catalog):
    for t in catalog.targets[catalog.targets["form"] == "ramp"].to_dict("records"):
        target = Target(t["indicator"], "ramp", t["operator"], t["value"], t["start_year"], t["deadline_year"], ramp=t["ramp"])
        assert ramp_value(target, t["deadline_year"]) == t["value"], t["target_id"]


def test_range_and_baseline_targets_are_complete(catalog):
    ranges = catalog.targets[catalog.targets["form"] == "range"]
    assert not ranges.empty and ranges["value_max"].notna().all()
    reductions = catalog.targets[catalog.targets["form"] == "baseline_reduction"]
    assert not reductions.empty and reductions["baseline"].map(lambda b: isinstance(b, dict)).all()
