"""Starting a real Envoy with the built filter, for the host tests, the demo and the benchmark.

The config is built as a dict (the same shape as `envoy/envoy.yaml`) and written as JSON,
which Envoy reads like YAML. Ports are free loopback ports picked at start.
"""
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WASM = ROOT / "target" / "wasm32-wasip1" / "release" / "proxy_audit.wasm"
VENV_BIN = Path(sys.executable).parent
ENVOY = str(VENV_BIN / "envoy") if (VENV_BIN / "envoy").exists() else "envoy"
JWT_SECRET = "proxy-audit-demo-secret-change-me-0123456789"
PSEUDONYM_KEY = "proxy-audit-demo-pseudonym-key-0123456789"

RUNTIMES = {"v8": "envoy.wasm.runtime.v8", "wasmtime": "envoy.wasm.runtime.wasmtime", "wamr": "envoy.wasm.runtime.wamr"}


# Every socket a test opens gets this timeout (seconds): a fault fails the test instead of hanging
# it. pytest-timeout (host-tests/pytest.ini) bounds each test as a whole.
SOCKET_TIMEOUT = 10
# Envoy's file flush interval (`--file-flush-interval-msec`, default 10 s): access-log lines reach
# their file within this; waits for them are counted in these periods.
FILE_FLUSH_MS = 100
# A condition that depends on a periodic action (the exporter's flush, Envoy's file flush) and is
# still false after this many of its periods is broken, not slow: the bound of such waits.
PERIODS = 100


def periods(interval_ms, n=PERIODS):
    """Seconds to wait for something that happens every `interval_ms` (a configured interval)."""
    return interval_ms * n / 1000


def connect(port, host="127.0.0.1"):
    """A raw client socket to a local port, with the test socket timeout."""
    return socket.create_connection((host, port), timeout=SOCKET_TIMEOUT)


def recv_until(sock, marker, limit=1 << 20):
    """Reads until `marker` has arrived; fails (never hangs) on a close, a timeout or `limit` bytes."""
    got = b""
    while marker not in got:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed before {marker!r}: {got[-500:]!r}"
        got += chunk
        assert len(got) <= limit, f"{marker!r} not within {limit} bytes"
    return got


def recv_all(sock):
    """Reads until the peer closes (within the socket's timeout)."""
    out = b""
    while chunk := sock.recv(65536):
        out += chunk
    return out


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cluster(name, port, host="127.0.0.1"):
    return {
        "name": name,
        "type": "STATIC",
        "connect_timeout": "1s",
        "per_connection_buffer_limit_bytes": 16 << 20,
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {"socket_address": {"address": host, "port_value": port}}}}]}],
        },
    }


def wasm_filter(plugin_config, runtime="v8", env=None, wasm=WASM, stop_iteration=None):
    """`stop_iteration`: Envoy's PluginConfig.allow_on_headers_stop_iteration (default: what the
    plugin config's `envoy.allow_on_headers_stop_iteration` says, as the docs say to set both)."""
    env = {"PROXY_AUDIT_JWT_SECRET": JWT_SECRET, "PROXY_AUDIT_PSEUDONYM_KEY": PSEUDONYM_KEY, **(env or {})}
    if stop_iteration is None:
        stop_iteration = bool(plugin_config.get("envoy", {}).get("allow_on_headers_stop_iteration"))
    return {
        "name": "proxy_audit",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            "config": {
                "name": "proxy_audit",
                "root_id": "proxy_audit",
                "configuration": {"@type": "type.googleapis.com/google.protobuf.StringValue", "value": json.dumps(plugin_config)},
                "vm_config": {
                    "vm_id": "proxy_audit",
                    "runtime": RUNTIMES[runtime],
                    "code": {"local": {"filename": str(wasm)}},
                    "environment_variables": {"key_values": env},
                },
                "failure_policy": "FAIL_CLOSED",
                **({"allow_on_headers_stop_iteration": True} if stop_iteration else {}),
            },
        },
    }


SHIPPER_ROOT_ID = "proxy_audit_shipper"


def shipper_extension(shipper_config, runtime="v8", wasm=WASM):
    """The singleton shipping service: the same .wasm under `envoy.bootstrap.wasm`, root id
    proxy_audit_shipper, reading the shared queue the filter hands its events to."""
    return {
        "name": "envoy.bootstrap.wasm",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.wasm.v3.WasmService",
            "singleton": True,
            "config": {
                "name": SHIPPER_ROOT_ID,
                "root_id": SHIPPER_ROOT_ID,
                "configuration": {"@type": "type.googleapis.com/google.protobuf.StringValue", "value": json.dumps(shipper_config)},
                "vm_config": {"vm_id": SHIPPER_ROOT_ID, "runtime": RUNTIMES[runtime], "code": {"local": {"filename": str(wasm)}}},
            },
        },
    }


def jwt_authn_filter(jwks_json, issuer="https://idp.example.com", audiences=("proxy-audit",)):
    return {
        "name": "envoy.filters.http.jwt_authn",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
            "providers": {
                "idp": {
                    "issuer": issuer,
                    "audiences": list(audiences),
                    "local_jwks": {"inline_string": jwks_json},
                    "forward": True,
                    "payload_in_metadata": "payload",
                }
            },
            # Requests without a token pass (the filter records them as anonymous);
            # a present but invalid token is rejected by jwt_authn itself.
            "rules": [{"match": {"prefix": "/"}, "requires": {"requires_any": {"requirements": [{"provider_name": "idp"}, {"allow_missing": {}}]}}}],
        },
    }


def downstream_tls(pki):
    """A TLS transport socket that requires a client certificate signed by the test CA."""
    return {
        "name": "envoy.transport_sockets.tls",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
            "require_client_certificate": True,
            "common_tls_context": {
                "tls_certificates": [{"certificate_chain": {"filename": pki["server.pem"]}, "private_key": {"filename": pki["server.key"]}}],
                "validation_context": {"trusted_ca": {"filename": pki["ca.pem"]}},
            },
        },
    }


def bootstrap(listen_port, admin_port, upstream_port, sink_port, http_filters, access_log_path=None, tls=None):
    hcm = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "ingress",
        "route_config": {
            "virtual_hosts": [
                {"name": "all", "domains": ["*"], "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "upstream", "timeout": "30s"}}]}
            ]
        },
        "http_filters": http_filters + [{"name": "envoy.filters.http.router", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}],
    }
    if access_log_path:
        hcm["access_log"] = [
            {
                "name": "envoy.access_loggers.file",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
                    "path": str(access_log_path),
                    "log_format": {
                        "json_format": {
                            "status": "%RESPONSE_CODE%",
                            "audit_id": "%FILTER_STATE(wasm.proxy_audit.audit_id:PLAIN)%",
                            "actor": "%FILTER_STATE(wasm.proxy_audit.actor_id:PLAIN)%",
                            "provider": "%FILTER_STATE(wasm.proxy_audit.ai_provider:PLAIN)%",
                            "model": "%FILTER_STATE(wasm.proxy_audit.ai_response_model:PLAIN)%",
                            "input_tokens": "%FILTER_STATE(wasm.proxy_audit.ai_input_tokens:PLAIN)%",
                            "output_tokens": "%FILTER_STATE(wasm.proxy_audit.ai_output_tokens:PLAIN)%",
                            "event": "%FILTER_STATE(wasm.proxy_audit.event:PLAIN)%",
                        }
                    },
                },
            }
        ]
    return {
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin_port}}},
        "static_resources": {
            "listeners": [
                {
                    "name": "main",
                    "address": {"socket_address": {"address": "127.0.0.1", "port_value": listen_port}},
                    "per_connection_buffer_limit_bytes": 16 << 20,
                    "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": hcm}],
                                       **({"transport_socket": downstream_tls(tls)} if tls else {})}],
                }
            ],
            "clusters": [cluster("upstream", upstream_port), cluster("audit_sink", sink_port)],
        },
    }


class Envoy:
    """One Envoy process on free ports. Use as a context manager."""

    def __init__(self, plugin_config, upstream_port, sink_port, runtime="v8", extra_filters_before=(), env=None,
                 concurrency=2, access_log=False, with_filter=True, tls=None, shipper=None, extra_args=(), lds=False,
                 stop_iteration=None):
        self.port = free_port()
        self.admin_port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="proxy-audit-envoy-"))
        self.access_log_path = self.dir / "access.log" if access_log else None
        filters = list(extra_filters_before) + (
            [wasm_filter(plugin_config, runtime, env, stop_iteration=stop_iteration)] if with_filter else [])
        self.config = bootstrap(self.port, self.admin_port, upstream_port, sink_port, filters, self.access_log_path, tls)
        if shipper is not None:
            self.config["bootstrap_extensions"] = [shipper_extension(shipper, runtime)]
        self.extra_args = list(extra_args)
        self.runtime, self.env, self.extra_filters_before = runtime, env, list(extra_filters_before)
        self.lds_path = None
        if lds:
            # The listener comes from a watched file (LDS), so `reload` can change the filter config.
            self.lds_path = self.dir / "lds" / "listeners.json"
            self.lds_path.parent.mkdir()
            self._write_lds(self.config["static_resources"].pop("listeners"))
            self.extra_args += ["--service-node", "envoy", "--service-cluster", "proxy-audit-tests"]
            self.config["dynamic_resources"] = {"lds_config": {
                "resource_api_version": "V3",
                "path_config_source": {"path": str(self.lds_path), "watched_directory": {"path": str(self.lds_path.parent)}}}}
        self.config_path = self.dir / "envoy.json"
        self.config_path.write_text(json.dumps(self.config, indent=1))
        self.log_path = self.dir / "envoy.log"
        self.concurrency = concurrency
        self.proc = None

    def _write_lds(self, listeners):
        body = {"resources": [{"@type": "type.googleapis.com/envoy.config.listener.v3.Listener", **l} for l in listeners]}
        tmp = self.lds_path.parent / ".listeners.tmp"
        tmp.write_text(json.dumps(body, indent=1))
        tmp.rename(self.lds_path)

    def reload(self, plugin_config):
        """A config change through LDS: the same VM (same code and vm config), a new plugin
        configuration, so Envoy starts a new plugin instance and retires the old one."""
        filters = self.extra_filters_before + [wasm_filter(plugin_config, self.runtime, self.env)]
        fresh = bootstrap(self.port, self.admin_port, 0, 0, filters, self.access_log_path)
        self._write_lds(fresh["static_resources"]["listeners"])

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout=30):
        self.log_file = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [ENVOY, "-c", str(self.config_path), "--concurrency", str(self.concurrency), "--log-level", "info",
             "--base-id", str(self.admin_port), "--file-flush-interval-msec", str(FILE_FLUSH_MS), *self.extra_args],
            stdout=self.log_file, stderr=subprocess.STDOUT,
        )
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"envoy exited with {self.proc.returncode}:\n{self.log()[-4000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.admin_port}/ready", timeout=1) as r:
                    if r.status == 200:
                        return self
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"envoy not ready in {timeout}s:\n{self.log()[-4000:]}")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        if getattr(self, "log_file", None):
            self.log_file.close()

    def log(self):
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stats(self, prefix=""):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.admin_port}/stats?filter={prefix}", timeout=5) as r:
            out = {}
            for line in r.read().decode().splitlines():
                k, _, v = line.partition(": ")
                out[k] = v
            return out

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def validate(config_path, cwd=ROOT):
    """`envoy --mode validate`: returns (ok, output)."""
    env = {**os.environ, "PROXY_AUDIT_JWT_SECRET": JWT_SECRET, "PROXY_AUDIT_PSEUDONYM_KEY": PSEUDONYM_KEY}
    p = subprocess.run([ENVOY, "--mode", "validate", "-c", str(config_path)], cwd=cwd, env=env, capture_output=True,
                       text=True, timeout=120)
    return p.returncode == 0, p.stdout + p.stderr


def wait_for(predicate, timeout=10, interval=0.05):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()


def default_plugin_config(**overrides):
    cfg = {
        "identity": {"jwt": {"hs256_secret_env": "PROXY_AUDIT_JWT_SECRET"}, "service_subjects": ["^svc-", "^system:serviceaccount:"]},
        "audit": {
            "exporter": {"cluster": "audit_sink", "flush_interval_ms": 100, "max_batch_events": 50},
            "resources": [{"path": "/patients/{id}", "type": "patient"}],
        },
    }
    for k, v in overrides.items():
        cfg[k] = {**cfg.get(k, {}), **v} if isinstance(v, dict) else v
    return cfg
