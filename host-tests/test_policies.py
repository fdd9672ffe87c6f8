"""The example policies in examples/policies: each passes check-config and does what its
regulation asks when loaded into a real Envoy."""
import json
import subprocess

import pytest

import harness
from conftest import assert_schema_valid
from test_classification import post_json, upstream_requests
from test_skeleton import call, token

POLICIES = harness.ROOT / "examples" / "policies"


def load(name):
    cfg = json.loads((POLICIES / name).read_text())
    cfg["audit"]["exporter"]["flush_interval_ms"] = 100
    return cfg


@pytest.mark.parametrize("path", sorted(POLICIES.glob("*.json")), ids=lambda p: p.name)
def test_policy_passes_check_config(path):
    p = subprocess.run([str(harness.ROOT / "target/release/proxy-audit"), "check-config", str(path)], capture_output=True, text=True)
    assert p.returncode == 0, p.stdout


def test_hipaa(envoy_factory, events, upstream):
    envoy = envoy_factory(load("hipaa.json"))
    alice, svc = token("dr-alice", roles=["physician"]), token("svc-etl")
    s1, _, _ = post_json(envoy, "/patients/1274/notes", {"patient": {"name": "John Q Public", "birthDate": "1961-04-12"}, "note": "MRN-12345678 reviewed"},
                         {"authorization": f"Bearer {alice}", "x-purpose-of-use": "treatment"})
    s2, _, body = call(envoy.url, "/patients/1274", headers={"authorization": f"Bearer {svc}"})
    assert (s1, s2) == (200, 403) and json.loads(body)["error"]["code"] == "service_account_not_allowed"
    (seen,) = upstream_requests(upstream)
    fwd = json.loads(seen["body"])
    assert fwd["patient"]["name"] == "[REDACTED:PERSON_NAME]" and "MRN-12345678" not in fwd["note"]
    evs = events.wait_requests(3)
    begin = [e for e in evs if e["phase"] == "begin"]
    assert len(begin) == 1, "write-ahead: the begin record of the forwarded request"
    done = [e for e in evs if e["phase"] == "complete" and e["kind"] == "access"][0]
    assert_schema_valid(done)
    assert (done["actor"]["id"], done["purpose"], done["target"]["resource_id"]) == ("dr-alice", "treatment", "patient:1274")
    assert {"person_name", "mrn"} <= {f["entity"] for f in done["data"]["request"]["findings"]}


def test_gdpr(envoy_factory, events, upstream, sink):
    envoy = envoy_factory(load("gdpr.json"))
    tok = token("agent-7")
    status, _, body = post_json(envoy, "/customers/88/contact", {"email": "maria@example.eu", "iban": "DE89370400440532013000"},
                                {"authorization": f"Bearer {tok}", "x-echo-body": "raw"})
    assert status == 200
    fwd = upstream_requests(upstream)[0]["body"]
    assert "maria@example.eu" not in fwd and "DE89370400440532013000" not in fwd and fwd.count("pseu_") == 2
    assert json.loads(body) == {"email": "maria@example.eu", "iban": "DE89370400440532013000"}, "restored for the client"
    (e,) = events.wait_requests(1)
    assert {f["action"] for f in e["data"]["request"]["findings"]} == {"pseudonymized"}
    assert any(b["path"] == "/v1/logs" for b in sink.store.raw_batches), "OTLP export"


def test_pci_dss(envoy_factory, events, upstream):
    envoy = envoy_factory(load("pci-dss.json"))
    auth = {"authorization": f"Bearer {token('cashier-1')}"}
    s1, _, b1 = post_json(envoy, "/payments/new", {"pan": "4111111111111111"}, auth)
    s2, _, _ = post_json(envoy, "/refunds", {"pan": "4111111111111111"}, auth)
    assert s1 == 403 and json.loads(b1)["error"]["code"] == "pci_in_request"
    assert [r["path"] for r in upstream_requests(upstream)] == ["/refunds"]
    assert json.loads(upstream_requests(upstream)[0]["body"])["pan"] == "************1111"
    evs = events.wait_requests(2)
    assert sorted(e["kind"] for e in evs) == ["access", "blocked"]


def test_sox(envoy_factory, events):
    envoy = envoy_factory(load("sox.json"))
    s1, _, _ = post_json(envoy, "/ledger/2024-001", {"amount": 100}, {"authorization": f"Bearer {token('svc-batch')}"})
    s2, _, _ = post_json(envoy, "/ledger/2024-001", {"amount": 100}, {"authorization": f"Bearer {token('controller-ann')}"})
    assert (s1, s2) == (403, 200)
    evs = events.wait_requests(3)
    ann = [e for e in evs if e["actor"]["id"] == "controller-ann"]
    assert sorted(e["phase"] for e in ann) == ["begin", "complete"]
    assert ann[0]["target"]["resource_type"] == "ledger_entry"


def test_ai_gateway(envoy_factory, events, upstream):
    envoy = envoy_factory(load("ai-gateway.json"))
    auth = {"authorization": f"Bearer {token('dev-1')}"}
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Summarize the case of bob@example.com"}]}
    status, _, _ = post_json(envoy, "/v1/chat/completions", body, auth)
    assert status == 200
    fwd = json.loads(upstream_requests(upstream)[0]["body"])
    assert "bob@example.com" not in fwd["messages"][0]["content"], "no personal data to a third-party model"
    (e,) = events.wait_requests(1)
    assert_schema_valid(e)
