"""What `proxy-audit scan` says is what the filter does: the same cases through a real Envoy and
through `scan` (which drives the same core exchange), compared byte for byte (forwarded or returned
body), finding for finding (the event's `data.request` / `data.response`), and refusal for
refusal (status and reason). Route overrides included."""
import json
import os
import subprocess
import urllib.request

import pytest

import harness
from test_skeleton import call

CLI = harness.ROOT / "target" / "release" / "proxy-audit"

PII = b'{"note": "SSN 536-22-8841, mail jane.doe@example.com", "card": "4111 1111 1111 1111"}'
SECRET = b'{"k": "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"}'
ROUTED = {
    "audit": {"pseudonym_key_env": "PROXY_AUDIT_PSEUDONYM_KEY"},
    "routes": [
        {"match": {"path_prefix": "/v1/"}, "classification": {"actions": {"pii": "pseudonymize"}}},
        {"match": {"path_prefix": "/strict/"}, "classification": {"actions": {"pii": "block"}}},
    ],
}
NO_REQUEST_SCAN = {"classification": {"request": False}}
OVERSIZE = {"classification": {"max_body_bytes": 32, "on_oversize": "reject"}}
SSE = (b'data: {"choices":[{"delta":{"content":"write to jane."}}]}\n\n'
       b'data: {"choices":[{"delta":{"content":"doe@example.com or call +1 415 555 2671"}}]}\n\n'
       b"data: [DONE]\n\n")
SSE_SECRET = (b'data: {"choices":[{"delta":{"content":"the key: "}}]}\n\n'
              b'data: {"choices":[{"delta":{"content":"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"}}]}\n\n'
              b"data: [DONE]\n\n")

# name, config overrides, direction, path, content type, body
CASES = [
    ("json_redacted", {}, "request", "/notes", "application/json", PII),
    ("text_redacted", {}, "request", "/t", "text/plain", b"call me at +1 415 555 2671 or jane@example.com, SSN 536-22-8841"),
    ("form_redacted", {}, "request", "/f", "application/x-www-form-urlencoded", b"email=jane%40example.com&n=1"),
    ("secret_blocked", {}, "request", "/k", "application/json", SECRET),
    ("route_pseudonymized", ROUTED, "request", "/v1/notes", "application/json", PII),
    ("route_blocked", ROUTED, "request", "/strict/notes", "application/json", PII),
    ("route_default", ROUTED, "request", "/other", "application/json", PII),
    ("clean_untouched", {}, "request", "/c", "application/json", b'{"note": "nothing here", "n": 1}'),
    ("response_redacted", NO_REQUEST_SCAN, "response", "/r", "application/json", PII),
    ("response_secret", NO_REQUEST_SCAN, "response", "/r", "application/json", SECRET),
    # A request event stream is buffered whole and scanned (never streamed).
    ("request_event_stream", {}, "request", "/s", "text/event-stream", SSE),
    # A streamed answer: redacted event by event, the same bytes as scan's.
    ("response_stream", NO_REQUEST_SCAN, "response", "/r", "text/event-stream", SSE),
    ("response_stream_secret", NO_REQUEST_SCAN, "response", "/r", "text/event-stream", SSE_SECRET),
    # Declared too large: refused with 413 before anything is read.
    ("oversize_rejected", OVERSIZE, "request", "/o", "application/json", PII),
]


def config(overrides):
    cfg = harness.default_plugin_config()
    for k, v in overrides.items():
        cfg[k] = {**cfg.get(k, {}), **v} if isinstance(v, dict) else v
    return cfg


def scan(cfg, tmp_path, direction, path, ctype, body):
    cfg_file = tmp_path / "cfg.json"
    cfg_file.write_text(json.dumps(cfg))
    env = {**os.environ, "PROXY_AUDIT_PSEUDONYM_KEY": harness.PSEUDONYM_KEY, "PROXY_AUDIT_JWT_SECRET": harness.JWT_SECRET}
    p = subprocess.run([str(CLI), "scan", "--config", str(cfg_file), "--direction", direction, "--method", "POST",
                        "--path", path, "--host", "127.0.0.1", "--content-type", ctype, "-"],
                       input=body, capture_output=True, timeout=60, env=env)
    assert p.returncode in (0, 1), p.stderr
    out = p.stdout.decode()
    # The body line(s), then the pretty JSON record from the line that opens it.
    cut = out.index("\n{\n") if "\n{\n" in out else out.index("{\n")
    head, record = out[:cut], json.loads(out[cut:])
    blocked = status = None
    if head.startswith("BLOCKED:"):
        # "BLOCKED: <reason> (the client gets status <status>; ...)"
        words = head.split()
        blocked, status = words[1], int(words[words.index("status") + 1].rstrip(";"))
    return head.rstrip("\n").encode(), record[direction], (blocked, status), p.returncode


@pytest.mark.parametrize("name, overrides, direction, path, ctype, body", CASES, ids=[c[0] for c in CASES])
def test_scan_matches_the_filter(envoy_factory, events, upstream, tmp_path, name, overrides, direction, path, ctype, body):
    cfg = config(overrides)
    envoy = envoy_factory(cfg)
    up = f"http://127.0.0.1:{upstream.server_address[1]}/__requests"
    urllib.request.urlopen(urllib.request.Request(up, method="DELETE"), timeout=10).read()
    headers = {"content-type": ctype}
    if direction == "response":
        headers["x-echo-body"] = "raw"
    status, _, answer = call(envoy.url, path, "POST", headers, body)
    (ev,) = events.wait_requests(1)
    seen = json.loads(urllib.request.urlopen(up, timeout=10).read())
    forwarded, record, (blocked, blocked_status), rc = scan(cfg, tmp_path, direction, path, ctype, body)

    assert ev["data"][direction]["findings"] == record["findings"], (ev["data"][direction], record)
    assert ev["data"][direction]["scanned"] == record["scanned"]
    if blocked:
        assert rc == 1 and ev["kind"] == "blocked" and ev["outcome"]["reason"] == blocked, (blocked, ev["outcome"])
        # The status the client got is the one scan names.
        assert status == blocked_status, (status, blocked_status)
        if ctype == "text/event-stream" and direction == "response":
            # The stream ends with an SSE error event carrying the JSON error.
            assert b"event: error" in answer and b"ghp_" not in answer, answer
            error = json.loads(answer.split(b"event: error\ndata: ", 1)[1].split(b"\n", 1)[0])
            assert error["error"]["code"] == blocked
        else:
            assert json.loads(answer)["error"]["code"] == blocked
        if direction == "request":
            assert seen == [], "a blocked request never reaches the upstream"
        return
    assert rc == 0 and ev["outcome"]["reason"] is None and status == 200
    if direction == "request":
        (req,) = seen
        # (scan prints the body as a line: its trailing newlines are the line's end)
        assert req["body"].encode().rstrip(b"\n") == forwarded, (req["body"], forwarded)
    else:
        assert answer.rstrip(b"\n") == forwarded, (answer, forwarded)
