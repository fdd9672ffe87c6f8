"""An independent chain check for the tests: hashes recomputed with Python's own
RFC 8785 canonicalization, so the filter's Rust JCS is checked against a second
implementation, not against itself."""
import hashlib
import json


def jcs(value):
    """RFC 8785 for the integer-only events (sorted keys by UTF-16, no spaces)."""
    if isinstance(value, dict):
        items = sorted(value.items(), key=lambda kv: kv[0].encode("utf-16-be"))
        return "{" + ",".join(json.dumps(k, ensure_ascii=False) + ":" + jcs(v) for k, v in items) + "}"
    if isinstance(value, list):
        return "[" + ",".join(jcs(v) for v in value) + "]"
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    raise TypeError(f"unexpected {type(value)} in event")


def event_hash(event):
    e = json.loads(json.dumps(event))
    e["chain"].pop("hash", None)
    return hashlib.sha256(jcs(e).encode()).hexdigest()


def check_chains(events, allow_gaps=False):
    """Groups by emitter, dedups by id, checks seq continuity, prev links and hashes."""
    chains = {}
    for e in {e["id"]: e for e in events}.values():
        chains.setdefault(e["chain"]["emitter"], []).append(e)
    for emitter, evs in chains.items():
        evs.sort(key=lambda e: e["chain"]["seq"])
        prev = "0" * 64
        for i, e in enumerate(evs):
            c = e["chain"]
            if not allow_gaps:
                assert c["seq"] == i, f"{emitter}: seq {c['seq']} at position {i}"
            assert event_hash(e) == c["hash"], f"{emitter}: seq {c['seq']} hash mismatch"
            if c["seq"] == (evs[i - 1]["chain"]["seq"] + 1 if i else 0):
                assert c["prev"] == prev, f"{emitter}: seq {c['seq']} bad prev"
            prev = c["hash"]
    return chains


def settled_chains(events, timeout=20, allow_gaps=False):
    """check_chains once the trail is whole: a batch that failed while the log
    service was down may still be waiting for its retry when the requests'
    own events have arrived. Fails with check_chains' message if it never is."""
    import harness

    def whole():
        try:
            check_chains(events.all(), allow_gaps)
            return True
        except AssertionError:
            return False

    harness.wait_for(whole, timeout)
    return check_chains(events.all(), allow_gaps)
