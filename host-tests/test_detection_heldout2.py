"""The second held-out detection gate (host-tests/corpus/heldout2.py): eleven layouts the detectors were
never tuned on (CSV, Markdown, YAML/TOML, HTML, XML, e-mail, SQL, logs, multi-language chat with tool
calls, nested JSON, URLs), regenerated from its seed on every run and scored through
`proxy-audit scan --ndjson`. The thresholds are issue 16's and were committed before the detectors
first ran on this corpus; each entity is its own test case so a miss names itself."""
import json

import pytest

from corpus import heldout2

import harness

# Targets this gate misses, each kept as an xfail naming why: a pass then FAILS, so an entry must be removed
# when the detectors reach the target. The thresholds are not lowered. None is left (gate seed, 2026-12-02,
# after the fixes found on the tuning seed: nested JSON members, SQL INSERT column lists, tag attributes
# before the label window, `kaart`; and `tél.` headers, found by probing): every entity meets its target in
# every layout.
KNOWN_MISSES = {}


@pytest.fixture(scope="module")
def gate():
    records = heldout2.generate(heldout2.SEED)
    results = heldout2.scan(records, harness.ROOT / "target" / "release" / "proxy-audit")
    rec_stats, look_stats, _ = heldout2.score(records, results)
    text, _ = heldout2.table(rec_stats, look_stats)
    print(text)
    return rec_stats, look_stats


def check(case, ok, message):
    reason = KNOWN_MISSES.get(case)
    if reason is None:
        assert ok, message
    elif ok:
        pytest.fail(f"{case} now meets its target: remove it from KNOWN_MISSES ({reason})")
    else:
        pytest.xfail(f"{message}: {reason}")


def test_the_corpus_is_the_same_on_every_run_and_has_every_entity_in_every_layout():
    a = heldout2.generate(heldout2.SEED, 2)
    assert json.dumps(a) == json.dumps(heldout2.generate(heldout2.SEED, 2))
    assert json.dumps(a) != json.dumps(heldout2.generate(heldout2.TUNING_SEED, 2))
    seen = {(ent, r["layout"]) for r in a for ent, *_ in r["labels"]}
    for ent in heldout2.VALUES:
        for layout in heldout2.LAYOUTS:
            if ent in heldout2.MULTILINE and layout in heldout2.NO_MULTILINE:
                continue
            assert (ent, layout) in seen, (ent, layout)
    assert {k for r in a for k, *_ in r["lookalikes"]} == set(heldout2.LOOKALIKES) | {"capitalised"}
    # Neither seed is the first corpus's.
    from corpus import heldout
    assert {heldout2.SEED, heldout2.TUNING_SEED}.isdisjoint({heldout.SEED, heldout.TUNING_SEED})


@pytest.mark.parametrize("entity", list(heldout2.VALUES))
def test_recall_of_the_entity_over_all_layouts_meets_its_target(gate, entity):
    rec_stats, _ = gate
    found = sum(v[0] for (e, _), v in rec_stats.items() if e == entity)
    total = sum(v[2] for (e, _), v in rec_stats.items() if e == entity)
    target = heldout2.TARGETS[entity]
    check(entity, found / total >= target, f"{entity}: recall {found}/{total} = {found / total:.4f} < {target}")


@pytest.mark.parametrize("entity", heldout2.CHECKSUM + heldout2.SECRETS)
def test_checksum_and_secret_entities_meet_the_target_in_every_layout(gate, entity):
    rec_stats, _ = gate
    target = heldout2.TARGETS[entity]
    below = [f"{lay} {v[0]}/{v[2]}" for (e, lay), v in sorted(rec_stats.items()) if e == entity and v[0] / v[2] < target]
    check(entity + " per layout", below == [], f"{entity} below {target} in: {', '.join(below)}")


def test_look_alikes_stay_untouched(gate):
    _, look_stats = gate
    listed = [k for k in look_stats if k != "capitalised"]
    touched = sum(look_stats[k][0] for k in listed)
    total = sum(look_stats[k][1] for k in listed)
    per = {k: look_stats[k] for k in listed if look_stats[k][0]}
    check("look-alikes", touched / total <= heldout2.LOOKALIKE_MAX,
          f"look-alikes touched {touched}/{total} = {touched / total:.4f} > {heldout2.LOOKALIKE_MAX}: {per}")


def test_capitalised_phrases_that_are_not_names_stay_untouched(gate):
    _, look_stats = gate
    touched, total = look_stats["capitalised"]
    check("capitalised", touched / total <= heldout2.CAPITALISED_MAX,
          f"capitalised non-names touched {touched}/{total} > {heldout2.CAPITALISED_MAX}")
