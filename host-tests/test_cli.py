"""The proxy-audit CLI: check-config, scan (same output as the filter), verify (fixture files)."""
import json
import subprocess
import urllib.request

import pytest

import harness
from test_classification import post_json, upstream_requests

CLI = str(harness.ROOT / "target" / "release" / "proxy-audit")
VERIFY_DATA = harness.ROOT / "core" / "tests" / "data" / "verify"


def run(*args, stdin=None):
    p = subprocess.run([CLI, *args], input=stdin, capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


def test_check_config_names_every_problem(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"identity": {"require": "sometimes"}, "classification": {"custom": [{"name": "x", "pattern": "(", "category": "phi"}]}, "nope": 1}))
    rc, out, _ = run("check-config", str(bad))
    assert rc == 1
    for key in ("$.identity.require", "$.classification.custom[0].pattern", "$.nope"):
        assert key in out, out
    good = tmp_path / "good.json"
    good.write_text(json.dumps(harness.default_plugin_config()))
    assert run("check-config", str(good))[0] == 0
    assert run("check-config", str(tmp_path / "missing.json"))[0] == 2


def test_check_config_refuses_what_the_filter_would_refuse_at_start(tmp_path):
    cfg = harness.default_plugin_config(classification={
        "custom": [{"name": "x", "pattern": "a*", "category": "custom"}],
        "fields": [{"path": "$['x", "entity": "person_name", "category": "pii"}],
        "actions": {"pii": "pseudonymize"}})
    cfg["audit"].pop("pseudonym_key_env", None)
    f = tmp_path / "c.json"
    f.write_text(json.dumps(cfg))
    rc, out, _ = run("check-config", str(f))
    assert rc == 1
    for key in ("$.audit.pseudonym_key_env", "$.classification.custom[0].pattern", "$.classification.fields[0].path"):
        assert key in out, out


def test_scan_prints_exactly_what_the_filter_forwards(envoy_factory, upstream, tmp_path):
    body = {"messages": [{"role": "user", "content": "SSN 536-22-8841, card 5555 5555 5555 4444, mail a.b@example.org"}], "meta": {"phone": "+1 415 555 0100"}}
    envoy = envoy_factory()
    post_json(envoy, "/scan-compare", body)
    (seen,) = upstream_requests(upstream)
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps(harness.default_plugin_config()))
    rc, out, _ = run("scan", "--config", str(cfg), "-", stdin=json.dumps(body))
    assert rc == 0
    assert out.splitlines()[0] == seen["body"]


def test_scan_reports_blocks():
    rc, out, _ = run("scan", "-", stdin='{"k": "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"}')
    # A GitHub token with a valid CRC32 is a secret: the default action blocks.
    assert rc == 1 and "BLOCKED: secret_in_request" in out, out


@pytest.mark.parametrize("name, code", [("intact.ndjson", 0), ("modified.ndjson", 1), ("missing.ndjson", 1),
                                        ("truncated.ndjson", 1), ("otlp.jsonl", 0), ("garbage.ndjson", 2)])
def test_verify_fixture_files(name, code):
    rc, out, _ = run("verify", str(VERIFY_DATA / name))
    assert rc == code, out


def test_verify_reads_stdin():
    data = (VERIFY_DATA / "intact.ndjson").read_text()
    rc, out, _ = run("verify", "-", stdin=data)
    assert rc == 0 and "every chain holds" in out


@pytest.mark.parametrize("sub", ["check-config", "scan", "verify", "keygen"])
def test_every_subcommand_answers_help(sub):
    rc, out, _ = run(sub, "--help")
    assert rc == 0 and "Usage: proxy-audit " + sub in out and "Exit" in out, out


def test_version_and_usage_errors():
    rc, out, _ = run("--version")
    assert rc == 0 and out.startswith("proxy-audit "), out
    for args, why in [(("verify", "--live-within", "soon", "x"), "invalid value 'soon' for '--live-within <SECONDS>'"),
                      (("scan", "--direction", "sideways"), "invalid value 'sideways' for '--direction"),
                      (("verify", "--shard", "2/2", "x"), "need 0 <= I < N"),
                      (("verify",), "required arguments were not provided"),
                      (("frobnicate",), "unrecognized subcommand")]:
        rc, _, err = run(*args)
        assert rc == 2 and why in err, (args, err)


def test_keygen_writes_a_private_and_a_public_key(tmp_path):
    rc, out, err = run("keygen", "--id", "k-2026-12", "--out", str(tmp_path / "keys"))
    assert rc == 0, err
    key, pub = tmp_path / "keys" / "k-2026-12.key", tmp_path / "keys" / "k-2026-12.pub"
    assert key.stat().st_mode & 0o777 == 0o600
    assert len(key.read_text().strip()) == 44  # base64 of 32 bytes
    assert json.loads(pub.read_text())["key_id"] == "k-2026-12"
    assert run("keygen", "--id", "k-2026-12", "--out", str(tmp_path / "keys"))[0] == 2, "never overwrites a key"
