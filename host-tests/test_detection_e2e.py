"""Detection end to end through Envoy with an OpenAI-compatible capture upstream (issue 16).

Values from the held-out generators (host-tests/corpus/heldout.py: Faker, python-stdnum,
phonenumbers, PyJWT, cryptography), one of each entity, written into a chat prompt after their
labels, go through a real Envoy with the filter in two modes: pseudonymize with restore, and
redact. Neither a value nor any 4-character piece of it may reach the upstream or the audit
trail (a piece that the same request with its values left out also carries, a word of the
prompt's own text, does not count). The model then streams values of its own, each split
across three events in a different field (delta.content, delta.reasoning_content, a tool
call's arguments, a vendor field under delta): none of them, nor a piece of one, reaches the
client."""
import json
import random
import re

import pytest

import harness
from corpus import heldout
from test_classification import post_json

# Entities whose values the prompt carries (secrets are blocked by default, so here every
# category is pseudonymized or redacted instead: the point is what leaves, not what blocks).
PROMPT_ENTITIES = [e for e in heldout.VALUES if e not in ("secret.private_key",)]
# What the model injects in its answer, one per field.
INJECTED = ["email", "phone", "us_ssn", "credit_card", "person_name", "iban", "secret.github_token", "ip_address"]
# Under the delta; then beside it in the choice (`^choice`) and at the event's top level (`^event`):
# issue 16.6, every string field of a streamed event is joined across events.
FIELDS = [("content",), ("reasoning_content",), ("tool_calls", 0, "function", "arguments"), ("extra", "note"),
          ("^choice", "logprobs", "content", 0, "token"), ("^event", "x_vendor", "note")]


def values(seed, entities):
    g = heldout.Gen(seed)
    out = {}
    for ent in entities:
        v, _ = heldout.VALUES[ent](g)
        out[ent] = v
    return out


def prompt(vals, blank=False):
    rnd = random.Random(7)
    lines = ["Please summarise this intake note for the care team."]
    for ent, v in vals.items():
        label = heldout.labels_for(ent)[0]
        lines.append(f"{label}: {'' if blank else v}.")
        lines.append(rnd.choice(["Thanks.", "Noted.", "See attached."]))
    return {"model": "gpt-4o-mini", "stream": True, "messages": [
        {"role": "system", "content": "You are a careful clinical assistant."},
        {"role": "user", "content": " ".join(lines)}]}


def pieces(v, n=4):
    return {v[i:i + n] for i in range(len(v) - n + 1)}


MARKS = re.compile(r"pseu_[0-9a-f]{16}|\[REDACTED:[A-Z0-9_.]+\]")


def leaks(vals, seen, skeleton):
    """(entity, piece) for each value piece in `seen` that `skeleton` does not explain."""
    seen = MARKS.sub(" ", seen)
    return sorted({(ent, p) for ent, v in vals.items() for p in pieces(v) if p in seen and p not in skeleton})


# Members of a finding the filter writes itself: entity names and JSON paths, not values.
STRUCTURAL = {"entity", "category", "action", "locations"}


def trail_strings(events):
    """Every string (keys and values) of the events, less digests, ids, timestamps and the
    entity names and paths of findings."""
    out = []

    def walk(x):
        if isinstance(x, dict):
            for k, v in x.items():
                out.append(k)
                if k not in STRUCTURAL:
                    walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)
        elif isinstance(x, str):
            out.append(x)
    walk(events)
    text = "\n".join(out)
    return re.sub(r"[0-9a-f]{16,}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|"
                  r"\d{4}-\d{2}-\d{2}T[0-9:.]+Z?", " ", text)


def script(injected):
    """The answer: each injected value split in three, in one of the fields in turn."""
    events = [{"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]}]
    for k, (ent, v) in enumerate(injected.items()):
        field = FIELDS[k % len(FIELDS)]
        label = heldout.labels_for(ent)[0]
        a, b = len(v) // 3, 2 * len(v) // 3
        for part in [f" {label}: {v[:a]}", v[a:b], v[b:] + ". "]:
            node = part
            for key in reversed(field[1:] if field[0].startswith("^") else field):
                node = [node] if isinstance(key, int) else {key: node}
            if field[0] == "tool_calls":
                node["tool_calls"][0].update({"index": 0})
            if field[0] == "^choice":
                events.append({"choices": [{"index": 0, "delta": {}, "finish_reason": None, **node}]})
            elif field[0] == "^event":
                events.append({"choices": [{"index": 0, "delta": {}, "finish_reason": None}], **node})
            else:
                events.append({"choices": [{"index": 0, "delta": node, "finish_reason": None}]})
    events.append({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    return events


def client_text(body):
    return "\n".join(line for line in body.decode("utf-8", "replace").split("\n") if line.startswith("data: "))


@pytest.mark.parametrize("mode", ["pseudonymize", "redact"])
def test_no_value_nor_a_piece_of_one_leaves_in_either_mode(envoy_factory, providers, events, mode):
    actions = {c: mode for c in ["pii", "phi", "pci", "secret", "custom"]}
    cfg = harness.default_plugin_config(
        classification={"actions": actions, "restore": mode == "pseudonymize"},
        audit={"pseudonym_key_env": "PROXY_AUDIT_PSEUDONYM_KEY", "exporter": {"cluster": "audit_sink", "flush_interval_ms": 100}},
    )
    envoy = envoy_factory(cfg, upstream_port=providers.server_address[1])
    sent = values(heldout.SEED + 16, PROMPT_ENTITIES)
    injected = values(heldout.SEED + 17, INJECTED)
    assert not set(sent.values()) & set(injected.values())

    # The same request with its values left out: what it carries is not a leak.
    providers.state["script"] = [{"choices": [{"index": 0, "delta": {"content": "ok"}, "finish_reason": "stop"}]}]
    status, _, control_body = post_json(envoy, "/v1/chat/completions", prompt(sent, blank=True))
    assert status == 200, control_body

    providers.state["script"] = script(injected)
    status, _, body = post_json(envoy, "/v1/chat/completions", prompt(sent))
    assert status == 200, body

    control_up, up = [r["body"] for r in providers.state["requests"]]
    assert leaks(sent, up, control_up) == [], "reached the upstream"
    for v in sent.values():
        assert v not in up

    evs = events.wait_requests(2)
    control_trail, trail = trail_strings(evs[0]), trail_strings(evs[1])
    assert leaks(sent, trail, control_trail) == [], "reached the audit trail"
    assert leaks(injected, trail, control_trail) == [], "an injected value reached the audit trail"
    found = {f["entity"] for f in evs[1]["data"]["request"]["findings"]}
    assert found == set(PROMPT_ENTITIES), sorted(set(PROMPT_ENTITIES) ^ found)

    text = client_text(body)
    skeleton = client_text(control_body) + json.dumps(script({e: "" for e in INJECTED}))
    assert leaks(injected, text, skeleton) == [], "an injected value reached the client"
    for v in injected.values():
        assert v not in text
    got = {f["entity"] for f in evs[1]["data"]["response"]["findings"]}
    assert set(INJECTED) <= got, sorted(set(INJECTED) - got)
