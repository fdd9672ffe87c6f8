"""Detection on the held-out corpus (host-tests/corpus/heldout.py): values from independent
generators in layouts the detectors were not tuned on, regenerated from its seed on every run and
scored through `proxy-audit scan --ndjson`. The targets in heldout.TARGETS were fixed before tuning."""
import json
import subprocess

from corpus import heldout

import harness


def test_the_corpus_is_the_same_on_every_run():
    a = heldout.generate(heldout.SEED, 3)
    b = heldout.generate(heldout.SEED, 3)
    assert json.dumps(a) == json.dumps(b)
    assert json.dumps(a) != json.dumps(heldout.generate(heldout.SEED + 1, 3))


def test_every_entity_and_layout_is_in_the_corpus():
    records = heldout.generate(heldout.SEED, 3)
    seen = {(ent, r["layout"]) for r in records for ent, *_ in r["labels"]}
    for ent in heldout.VALUES:
        for layout in heldout.CORE_LAYOUTS[:-1]:
            if (ent, layout) == ("secret.private_key", "url"):
                continue
            assert (ent, layout) in seen, (ent, layout)
    kinds = {k for r in records for k, *_ in r["lookalikes"]}
    assert kinds == set(heldout.LOOKALIKES) | {"capitalised"}


def test_the_scorer_counts_a_value_found_only_when_every_character_is_replaced_by_its_entity():
    # Hand-made results, not the detectors: the scoring rules themselves.
    records = [
        {"layout": "prose", "body": "SSN 078-05-1120 ok", "labels": [["us_ssn", [], 4, 15]], "lookalikes": []},
        {"layout": "prose", "body": "SSN 078-05-1120 ok", "labels": [["us_ssn", [], 4, 15]], "lookalikes": []},
        {"layout": "prose", "body": "SSN 078-05-1120 ok", "labels": [["us_ssn", [], 4, 15]], "lookalikes": []},
        {"layout": "json", "body": {"a": {"b": "x 12345 y"}}, "labels": [],
         "lookalikes": [["order_id", ["a", "b"], 2, 7]]},
    ]
    results = [
        {"body": "SSN [REDACTED:US_SSN] ok"},
        {"body": "SSN [REDACTED:PHONE]-1120 ok"},
        {"body": "SSN [REDACTED:US_ITIN] ok"},
        {"body": {"a": {"b": "x 12[REDACTED:PHONE] y"}}},
    ]
    rec, looks, misses = heldout.score(records, results)
    assert rec == {("us_ssn", "prose"): [1, 1, 3]}
    assert looks == {"order_id": [1, 1]}
    assert [m[0] for m in misses] == ["missed", "wrong", "touched"]


def test_held_out_recall_and_look_alikes_meet_the_targets():
    records = heldout.generate(heldout.SEED, 100)
    results = heldout.scan(records, harness.ROOT / "target" / "release" / "proxy-audit")
    rec_stats, look_stats, _ = heldout.score(records, results)
    text, below = heldout.table(rec_stats, look_stats)
    print(text)
    assert below == [], "\n".join(below)


def test_scan_ndjson_answers_one_line_per_body_and_stops_quietly_at_a_closed_pipe():
    cli = str(harness.ROOT / "target" / "release" / "proxy-audit")
    lines = '"mail jane.doe@example.com"\n{"ssn": "078-05-1120"}\n\n"nothing here"\n'
    p = subprocess.run([cli, "scan", "--ndjson", "-"], input=lines, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    out = [json.loads(x) for x in p.stdout.splitlines()]
    assert [o["line"] for o in out] == [1, 2, 4]
    assert [o["body"] for o in out] == ["mail [REDACTED:EMAIL]", {"ssn": "[REDACTED:US_SSN]"}, "nothing here"]
    assert [[f["entity"] for f in o["request"]["findings"]] for o in out] == [["email"], ["us_ssn"], []]
    assert out[1]["request"]["findings"][0]["locations"] == ["$.ssn"]
    # Many results into a reader that stops after the first line: no panic, nothing on stderr.
    many = '"jane.doe@example.com"\n' * 50_000
    sh = subprocess.run(["bash", "-c", f"set -o pipefail; '{cli}' scan --ndjson - | head -n 1 >/dev/null; echo ${{PIPESTATUS[0]}}"],
                        input=many, capture_output=True, text=True, timeout=120)
    assert sh.stdout.strip() == "0" and sh.stderr == "", (sh.stdout, sh.stderr)
    bad = subprocess.run([cli, "scan", "--ndjson", "-"], input="42\n", capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "line 1" in bad.stderr
