import json
import sys
from pathlib import Path

import jsonschema
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402
from fixtures import echo_upstream, log_service, providers as provider_fixtures  # noqa: E402

SCHEMA_PATH = Path(__file__).resolve().parent / "audit-event.schema.json"
SCHEMA = json.loads(SCHEMA_PATH.read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker())


def assert_schema_valid(event):
    errors = sorted(VALIDATOR.iter_errors(event), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors) + "\n" + json.dumps(event, indent=1)


@pytest.fixture(scope="session", autouse=True)
def built_wasm():
    if not harness.WASM.exists():
        pytest.exit(f"{harness.WASM} is missing: run scripts/test (it builds the .wasm first)", returncode=2)
    return harness.WASM


@pytest.fixture
def sink():
    server = log_service.serve_in_thread()
    yield server
    server.shutdown()


@pytest.fixture
def upstream():
    server = echo_upstream.serve_in_thread()
    yield server
    server.shutdown()


@pytest.fixture
def providers():
    server = provider_fixtures.serve_in_thread()
    yield server
    server.shutdown()


class Events:
    """The log service's view, with helpers."""

    def __init__(self, sink):
        self.sink = sink

    def all(self):
        with self.sink.store.lock:
            return list(self.sink.store.events)

    def requests(self):
        return [e for e in self.all() if e["kind"] in ("access", "denied", "blocked")]

    def wait_requests(self, n, timeout=15):
        harness.wait_for(lambda: len(self.requests()) >= n, timeout)
        return self.requests()


@pytest.fixture
def events(sink):
    return Events(sink)


@pytest.fixture
def envoy_factory(sink, upstream):
    started = []

    def make(plugin_config=None, upstream_port=None, **kw):
        cfg = plugin_config if plugin_config is not None else harness.default_plugin_config()
        e = harness.Envoy(cfg, upstream_port or upstream.server_address[1], sink.server_address[1], **kw)
        started.append(e)
        return e.start()

    yield make
    for e in started:
        e.stop()
        log = e.log()
        assert "panicked" not in log, log[-3000:]
        assert "wasm trap" not in log.lower(), log[-3000:]
