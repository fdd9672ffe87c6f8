"""Signed checkpoints through a real Envoy: keys from `proxy-audit keygen`, the private key in the
VM's environment, `proxy-audit verify --key`. An untouched trail verifies; an event edited in the
middle with every later hash recomputed fails, naming the emitter and the seqs; a stripped or altered
signature fails; a trail written across a key rotation verifies with both public keys and fails with
only the old one past the rotation; the witness gets every signed record."""
import json
import re
import subprocess
import time

import harness
from chaincheck import event_hash, jcs
from conftest import assert_schema_valid
from test_skeleton import call

CLI = str(harness.ROOT / "target" / "release" / "proxy-audit")


def keygen(tmp_path, key_id):
    p = subprocess.run([CLI, "keygen", "--id", key_id, "--out", str(tmp_path / "keys")], capture_output=True,
                       text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    return (tmp_path / "keys" / f"{key_id}.key").read_text().strip(), tmp_path / "keys" / f"{key_id}.pub"


def signing_config(key_env, key_id, **audit):
    cfg = harness.default_plugin_config()
    cfg["audit"].update({"signing": {"key_env": key_env, "key_id": key_id}, "checkpoint_every_events": 5, **audit})
    return cfg


def verify(tmp_path, events, *args, name="trail.ndjson"):
    """The trail as the filter shipped it (canonical lines), verified with `args`."""
    trail = tmp_path / name
    trail.write_text("".join(jcs(e) + "\n" for e in events))
    p = subprocess.run([CLI, "verify", "--live", *map(str, args), str(trail)], capture_output=True, text=True,
                       timeout=120)
    return p.returncode, p.stdout + p.stderr


def chains(events):
    out = {}
    for e in {e["id"]: e for e in events}.values():
        out.setdefault(e["chain"]["emitter"], []).append(e)
    for evs in out.values():
        evs.sort(key=lambda e: e["chain"]["seq"])
    return out


def signed_worker_chain(events):
    """A chain with an access event between two signed checkpoints, and that event's index."""
    for em, evs in chains(events).items():
        kinds = [e["kind"] for e in evs]
        for i, e in enumerate(evs):
            if e["kind"] == "access" and "checkpoint" in kinds[i + 1:] and e["chain"]["seq"] == i and i >= 2:
                return em, evs, i
    raise AssertionError("no chain with an access event before a signed checkpoint")


def rehash(evs, start, heads=False):
    """Recomputes every hash from `start` on, as whoever can write the log store could."""
    evs = json.loads(json.dumps(evs))
    prev = evs[start - 1]["chain"]["hash"]
    for e in evs[start:]:
        e["chain"]["prev"] = prev
        if heads and e["kind"] == "checkpoint":
            e["trail"]["head_hash"] = prev
        e["chain"]["hash"] = event_hash(e)
        prev = e["chain"]["hash"]
    return evs


def load(envoy, n, prefix):
    for i in range(n):
        assert call(envoy.url, f"/{prefix}/{i}")[0] == 200


def test_signed_trail_through_envoy_and_what_tampering_shows(envoy_factory, events, tmp_path):
    key, pub = keygen(tmp_path, "k1")
    envoy = envoy_factory(signing_config("PROXY_AUDIT_SIGNING_KEY", "k1"), env={"PROXY_AUDIT_SIGNING_KEY": key})
    load(envoy, 30, "signed")
    events.wait_requests(30)
    assert harness.wait_for(lambda: sum(e["kind"] == "checkpoint" for e in events.all()) >= 4, 15)
    trail = events.all()
    signed = [e for e in trail if e["kind"] in ("chain_start", "checkpoint")]
    assert signed and all(e["trail"]["signature"]["alg"] == "ed25519" and e["trail"]["signature"]["key_id"] == "k1"
                          for e in signed)
    assert all("signature" not in e.get("trail", {}) for e in trail if e["kind"] == "access")
    assert any(e["trail"].get("reason") == "events" for e in trail if e["kind"] == "checkpoint")
    for e in signed:
        assert_schema_valid(e)

    # Untouched: every signature holds; each chain reports its last signed seq.
    rc, out = verify(tmp_path, trail, "--key", pub)
    assert rc == 0, out
    assert len(re.findall(r"^SIGNED emitter .*: last signed seq \d+ \(key k1\)", out, re.M)) == len(chains(trail)), out

    em, evs, i = signed_worker_chain(trail)
    others = [e for e in trail if e["chain"]["emitter"] != em]
    edited = json.loads(json.dumps(evs))
    edited[i]["outcome"]["status_code"] = 500
    # Edited, every later hash recomputed, the signed heads left alone: the hashes hold, the heads do not.
    forged = rehash(edited, i)
    rc, out = verify(tmp_path, others + forged)
    assert rc == 1 and "checkpoint event at seq" in out, out  # without keys: the unsigned head check
    rc, out = verify(tmp_path, others + forged, "--key", pub)
    m = re.search(rf"BREAK emitter {re.escape(em)} seq (\d+): rewritten: .* seq (\d+)\.\.(\d+) was rewritten", out)
    assert rc == 1 and m, out
    assert int(m.group(2)) <= i <= int(m.group(3)), (i, out)
    # The signed heads rewritten too: now only the signatures tell.
    forged = rehash(edited, i, heads=True)
    rc, out = verify(tmp_path, others + forged)
    assert rc == 0, out
    rc, out = verify(tmp_path, others + forged, "--key", pub)
    first_cp = next(e["chain"]["seq"] for e in forged[i:] if e["kind"] == "checkpoint")
    assert rc == 1 and f"BREAK emitter {em} seq {first_cp}: signature: " in out and "bad signature" in out, out

    # A signature stripped or altered (and the hashes recomputed): fails at that record.
    cp = next(k for k, e in enumerate(evs) if k > 0 and e["kind"] == "checkpoint")
    stripped = json.loads(json.dumps(evs))
    del stripped[cp]["trail"]["signature"]
    rc, out = verify(tmp_path, others + rehash(stripped, cp), "--key", pub)
    assert rc == 1 and f"BREAK emitter {em} seq {cp}: signature: " in out and "has no signature" in out, out
    altered = json.loads(json.dumps(evs))
    sig = altered[cp]["trail"]["signature"]["sig"]
    altered[cp]["trail"]["signature"]["sig"] = ("B" if sig[0] == "A" else "A") + sig[1:]
    rc, out = verify(tmp_path, others + rehash(altered, cp), "--key", pub)
    assert rc == 1 and f"BREAK emitter {em} seq {cp}: signature: " in out and "bad signature" in out, out


def test_key_rotation_needs_both_keys_past_it(envoy_factory, events, tmp_path):
    key1, pub1 = keygen(tmp_path, "k1")
    key2, pub2 = keygen(tmp_path, "k2")
    # Both keys are in the VM's environment from the start (the VM stays the same); the plugin
    # configuration names the one to sign with.
    env = {"PROXY_AUDIT_SIGNING_KEY_1": key1, "PROXY_AUDIT_SIGNING_KEY_2": key2}
    envoy = envoy_factory(signing_config("PROXY_AUDIT_SIGNING_KEY_1", "k1"), env=env, lds=True,
                          extra_args=["--drain-time-s", "1"])
    load(envoy, 10, "before")
    events.wait_requests(10)
    old = {e["chain"]["emitter"] for e in events.all()}
    envoy.reload(signing_config("PROXY_AUDIT_SIGNING_KEY_2", "k2"))

    def updates():
        s = envoy.stats("listener_manager.lds.update_success")
        return int(s.get("listener_manager.lds.update_success", 0))
    assert harness.wait_for(lambda: updates() >= 2, 20), "Envoy took the new listener config"
    time.sleep(0.5)
    load(envoy, 10, "after")
    events.wait_requests(20)
    # The retired chains end with a record signed by the old key (handed to the new instances).
    assert harness.wait_for(lambda: any(e.get("trail", {}).get("reason") == "end" for e in events.all()), 20)
    trail = events.all()
    by_key = {e["trail"]["signature"]["key_id"] for e in trail if "signature" in e.get("trail", {})}
    assert by_key == {"k1", "k2"}, by_key
    new = {e["chain"]["emitter"] for e in trail} - old
    assert new and all(e["trail"]["signature"]["key_id"] == "k2" for e in trail
                       if e["chain"]["emitter"] in new and "signature" in e.get("trail", {}))
    rc, out = verify(tmp_path, trail, "--key", pub1, "--key", pub2)
    assert rc == 0, out
    rc, out = verify(tmp_path, trail, "--key", pub1)
    assert rc == 1, out
    broken = set(re.findall(r"^BREAK emitter (\S+) seq \d+: signature: .*\"k2\", which no --key file holds", out, re.M))
    assert broken == new, out
    assert not any(f"BREAK emitter {e} " in out for e in old), out


def test_the_witness_keeps_every_signed_record(upstream, sink, events, tmp_path):
    from fixtures import log_service
    witness = log_service.serve_in_thread()
    try:
        key, pub = keygen(tmp_path, "k1")
        cfg = signing_config("PROXY_AUDIT_SIGNING_KEY", "k1",
                             witness={"cluster": "audit_witness", "path": "/v1/checkpoints"})
        envoy = harness.Envoy(cfg, upstream.server_address[1], sink.server_address[1],
                              env={"PROXY_AUDIT_SIGNING_KEY": key})
        # The witness: a second log service, its own cluster.
        envoy.config["static_resources"]["clusters"].append(harness.cluster("audit_witness", witness.server_address[1]))
        envoy.config_path.write_text(json.dumps(envoy.config, indent=1))
        with envoy:
            load(envoy, 12, "witnessed")
            events.wait_requests(12)
            signed = lambda: {e["id"] for e in events.all() if "signature" in e.get("trail", {})}  # noqa: E731
            assert harness.wait_for(lambda: signed() and signed() <= {e["id"] for e in witness.store.events}, 15)
            copy = tmp_path / "witness.ndjson"
            copy.write_text("".join(jcs(e) + "\n" for e in witness.store.events))
            trail = events.all()
            rc, out = verify(tmp_path, trail, "--key", pub, "--checkpoints", copy)
            assert rc == 0, out
            # The store cut after the last witnessed record: the witness's copy shows it.
            last = max((e for e in witness.store.events), key=lambda e: e["chain"]["seq"])
            em, seq = last["chain"]["emitter"], last["chain"]["seq"]
            cut = [e for e in trail if not (e["chain"]["emitter"] == em and e["chain"]["seq"] >= seq)]
            rc, out = verify(tmp_path, cut, "--key", pub, "--checkpoints", copy)
            assert rc == 1 and f"BREAK emitter {em} seq {seq}: truncated" in out, out
    finally:
        witness.shutdown()



def test_a_witness_queue_overflow_is_declared_in_the_chain(upstream, sink, events, tmp_path):
    """The witness unreachable for longer than its queue (1,000 records) holds: the signed records it
    dropped are still in the chain, and a `loss` event (reason witness_buffer_full) in the chain says
    which; verify reports it and the trail holds."""
    key, pub = keygen(tmp_path, "k1")
    cfg = signing_config("PROXY_AUDIT_SIGNING_KEY", "k1", checkpoint_every_events=1,
                         witness={"cluster": "audit_witness", "path": "/v1/checkpoints"})
    envoy = harness.Envoy(cfg, upstream.server_address[1], sink.server_address[1], concurrency=1,
                          env={"PROXY_AUDIT_SIGNING_KEY": key})
    # The witness's cluster points at a port nobody listens on.
    envoy.config["static_resources"]["clusters"].append(harness.cluster("audit_witness", harness.free_port()))
    envoy.config_path.write_text(json.dumps(envoy.config, indent=1))
    with envoy:
        n = 1_100  # one worker: a signed checkpoint after every request, more than the queue holds
        load(envoy, n, "unwitnessed")
        events.wait_requests(n)
        witness_losses = lambda evs: list({e["id"]: e for e in evs  # noqa: E731
                                           if e["kind"] == "loss" and e["trail"].get("reason") == "witness_buffer_full"
                                           }.values())
        assert harness.wait_for(lambda: witness_losses(events.all()), 20), "no witness_buffer_full loss event"
        trail = events.all()
    losses = witness_losses(trail)
    by_seq = {(e["chain"]["emitter"], e["chain"]["seq"]): e for e in trail}
    signed = {k for k, e in by_seq.items() if "signature" in e.get("trail", {})}
    for loss in losses:
        assert_schema_valid(loss)
        t = loss["trail"]
        assert set(t) == {"lost_events", "first_seq", "last_seq", "reason"}, t
        em = loss["chain"]["emitter"]
        # The range starts and ends at signed records of this chain, all present, and counts at most those.
        assert (em, t["first_seq"]) in signed and (em, t["last_seq"]) in signed, t
        in_range = sum(1 for s in range(t["first_seq"], t["last_seq"] + 1) if (em, s) in signed)
        assert 1 <= t["lost_events"] <= in_range, t
    rc, out = verify(tmp_path, trail, "--key", pub)
    assert rc == 0, out
    lines = re.findall(r"^WITNESS emitter (\S+): (\d+) signed records in seq (\d+)\.\.(\d+) not sent to the witness",
                       out, re.M)
    want = [(e["chain"]["emitter"], str(e["trail"]["lost_events"]), str(e["trail"]["first_seq"]),
             str(e["trail"]["last_seq"])) for e in losses]
    assert sorted(lines) == sorted(want), out
    assert "LOSS emitter" not in out, out
