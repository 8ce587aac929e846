"""The plan catalog: every seed's targets load, name known indicators and levels, and trace to the seed text."""

import re
from pathlib import Path

import yaml

from pipelines.catalog import TARGET_LEVELS
from pipelines.targets import Target, ramp_value

SEEDS = Path(__file__).resolve().parent.parent / "catalog" / "plans" / "seeds"
NOT_TARGETS = SEEDS.parent / "traceability" / "not_targets.yaml"  # not in plans/*.yaml: those are plans
PERCENT = re.compile(r"\d+(?:[.,]\d+)?\s*%")  # "80%", "2,5%", "35 %"

# Quantitative targets per seed, counted by reading each seed line by line: 000 Ngã Năm, Appendix I
# (two phases, the digitization ramp split town/commune, blank cells skipped); 001 Tây Hòa, section II
# (II.1-II.6, the e-government targets of II.6 included) plus III.6 and the appendix; 002 Minh Đức, II.1-II.7 plus the appendix; 003 Cần Thơ, points 1-6, III
# and the appendix; 004 Trần Đề, the two "tiếp tục đạt 100%" legal-document targets.
EXPECTED_COUNTS = {
    "ngan-nam-2021-2030": 52,
    "tay-hoa-2021-2025": 36,
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


def _spans(text: str, quote: str) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in re.finditer(re.escape(quote), text)] if quote else []


def _sections(text: str, sections: list[dict]) -> list[tuple[int, int]]:
    out = []
    for section in sections:
        start = 0 if section["from"] is None else text.index(section["from"])
        end = len(text) if section["to"] is None else text.index(section["to"], start)
        out.append((start, end))
    return out


def test_not_targets_file_is_complete_and_verbatim(catalog):
    """Every seed plan has an entry; each listed passage is in its seed, has a percentage and a reason."""
    doc = yaml.safe_load(NOT_TARGETS.read_text(encoding="utf-8"))["seeds"]
    assert set(doc) == set(catalog.plans["seed"])
    plan_of = dict(zip(catalog.plans["seed"], catalog.plans["plan_id"], strict=True))
    ids = catalog.targets.groupby("plan_id")["target_id"].agg(set).to_dict()
    problems = []
    for seed, entry in doc.items():
        text = (SEEDS / seed).read_text(encoding="utf-8")
        assert entry["plan"] == plan_of[seed], seed
        for section in entry["target_sections"]:
            for marker in (section["from"], section["to"]):
                if marker is not None and marker not in text:
                    problems.append((seed, "section marker not in seed", marker))
        for item in entry["not_targets"]:
            if item["text"] not in text or not PERCENT.search(item["text"]):
                problems.append((seed, "not verbatim or no percentage", item["text"][:60]))
            if item["reason"] not in ("restates", "no_target") or not item.get("note"):
                problems.append((seed, "reason/note", item["text"][:60]))
            if item["reason"] == "restates" and (not item.get("restates") or set(item["restates"]) - ids[entry["plan"]]):
                problems.append((seed, "restates unknown targets", item.get("restates")))
    assert problems == []


def test_every_seed_percentage_is_a_target_or_listed(catalog):
    """Reverse traceability: each percentage in a seed's target sections is quoted by a target or listed as not one.

    Every percentage of the seed must also lie in a target section, so nothing is skipped by drawing the
    sections too small, and every not-target entry must still be needed (no percentage it covers is quoted
    by a target already).
    """
    doc = yaml.safe_load(NOT_TARGETS.read_text(encoding="utf-8"))["seeds"]
    uncovered, outside, stale = [], [], []
    for seed, entry in doc.items():
        text = (SEEDS / seed).read_text(encoding="utf-8")
        sources = set(catalog.targets.loc[catalog.targets["plan_id"] == entry["plan"], "source_vi"])
        encoded = [span for quote in sources for span in _spans(text, quote)]
        listed = {item["text"]: _spans(text, item["text"]) for item in entry["not_targets"]}
        sections = _sections(text, entry["target_sections"])
        needed: set[str] = set()
        for match in PERCENT.finditer(text):
            at = match.start()
            line = text.count("\n", 0, at) + 1
            if not any(a <= at < b for a, b in sections):
                outside.append((seed, line, match.group()))
                continue
            if any(a <= at < b for a, b in encoded):
                continue
            covering = [quote for quote, spans in listed.items() if any(a <= at < b for a, b in spans)]
            if covering:
                needed.update(covering)
            else:
                uncovered.append((seed, line, text[max(0, at - 60) : match.end() + 20]))
        stale += [(seed, quote[:60]) for quote in listed if quote not in needed]
    assert uncovered == [], "percentages neither encoded (source_vi) nor listed in not_targets.yaml"
    assert outside == [], "percentages outside every target section of not_targets.yaml"
    assert stale == [], "not_targets.yaml entries that cover no unencoded percentage"
