"""A small proxy-wasm ABI 0.2.1 host on wasmtime, to run the filter without Envoy.

It plays the proxy's part for one VM: it links every host function of the ABI (module
`env`) and the subset of WASI that Envoy gives wasm modules (module
`wasi_snapshot_preview1`: stdout/stderr, the VM's environment variables, clocks, randomness,
no filesystem), then drives the module's `proxy_on_*` callbacks the way Envoy does.

Everything lives on the `WasmHost` object: its own wasmtime Engine, Store and Linker, the
clock (set by the test, never read from the machine after construction), logs, properties,
metrics, shared data, the HTTP calls the module dispatched, and one `Stream` object per HTTP
request. Nothing is global, so hosts can run side by side, in one test or in parallel tests.

Reference: the proxy-wasm spec `abi-versions/v0.2.1/README.md` (signatures, status codes,
serialization of maps and property paths), and Envoy's WASI list (proxy-wasm-cpp-host).
"""
import json
import os
import random
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path

import wasmtime

WASM = Path(__file__).resolve().parent.parent / "target" / "wasm32-wasip1" / "release" / "proxy_audit.wasm"

# -- ABI 0.2.1 constants (spec, "Types") ------------------------------------------------------
OK, NOT_FOUND, BAD_ARGUMENT, SERIALIZATION_FAILURE, PARSE_FAILURE = 0, 1, 2, 3, 4
INVALID_MEMORY_ACCESS, EMPTY, CAS_MISMATCH, INTERNAL_FAILURE, UNIMPLEMENTED = 6, 7, 8, 10, 12
CONTINUE, PAUSE = 0, 1
TRACE, DEBUG, INFO, WARN, ERROR, CRITICAL = range(6)
LEVELS = ("trace", "debug", "info", "warn", "error", "critical")
# proxy_buffer_type_t
REQUEST_BODY, RESPONSE_BODY, DOWNSTREAM_DATA, UPSTREAM_DATA, CALL_RESPONSE_BODY = 0, 1, 2, 3, 4
GRPC_MESSAGE, VM_CONFIGURATION, PLUGIN_CONFIGURATION, FOREIGN_ARGUMENTS = 5, 6, 7, 8
# proxy_map_type_t
REQUEST_HEADERS, REQUEST_TRAILERS, RESPONSE_HEADERS, RESPONSE_TRAILERS = 0, 1, 2, 3
GRPC_INITIAL_METADATA, GRPC_TRAILING_METADATA, CALL_RESPONSE_HEADERS, CALL_RESPONSE_TRAILERS = 4, 5, 6, 7
# proxy_stream_type_t
HTTP_REQUEST, HTTP_RESPONSE, DOWNSTREAM, UPSTREAM = 0, 1, 2, 3
COUNTER, GAUGE, HISTOGRAM = 0, 1, 2
# wasi_errno_t
E_SUCCESS, E_BADF, E_FAULT, E_INVAL, E_NOENT, E_NOSYS, E_NOTSUP = 0, 8, 21, 28, 44, 52, 58

# Every host function of ABI 0.2.1 (spec, "Functions exposed by the host").
ABI_HOST_FUNCTIONS = frozenset("""
proxy_done proxy_set_effective_context proxy_log proxy_get_log_level proxy_get_current_time_nanoseconds
proxy_set_tick_period_milliseconds proxy_set_buffer_bytes proxy_get_buffer_bytes proxy_get_buffer_status
proxy_get_header_map_size proxy_get_header_map_pairs proxy_set_header_map_pairs proxy_get_header_map_value
proxy_add_header_map_value proxy_replace_header_map_value proxy_remove_header_map_value proxy_continue_stream
proxy_close_stream proxy_get_status proxy_send_local_response proxy_http_call proxy_grpc_call proxy_grpc_stream
proxy_grpc_send proxy_grpc_cancel proxy_grpc_close proxy_set_shared_data proxy_get_shared_data
proxy_register_shared_queue proxy_resolve_shared_queue proxy_enqueue_shared_queue proxy_dequeue_shared_queue
proxy_define_metric proxy_record_metric proxy_increment_metric proxy_get_metric proxy_get_property
proxy_set_property proxy_call_foreign_function
""".split())

# Callbacks of ABI 0.2.1 a module may export (spec, "Callbacks exposed by the Wasm module").
ABI_CALLBACKS = frozenset("""
proxy_abi_version_0_2_1 _initialize main _start proxy_on_memory_allocate malloc proxy_on_context_create
proxy_on_done proxy_on_log proxy_on_delete proxy_on_vm_start proxy_on_configure proxy_on_tick
proxy_on_new_connection proxy_on_downstream_data proxy_on_downstream_connection_close proxy_on_upstream_data
proxy_on_upstream_connection_close proxy_on_request_headers proxy_on_request_body proxy_on_request_trailers
proxy_on_response_headers proxy_on_response_body proxy_on_response_trailers proxy_on_http_call_response
proxy_on_grpc_receive_initial_metadata proxy_on_grpc_receive proxy_on_grpc_receive_trailing_metadata
proxy_on_grpc_close proxy_on_queue_ready proxy_on_foreign_function
""".split())

# The wasi_snapshot_preview1 functions Envoy registers for every VM (proxy-wasm-cpp-host,
# FOR_ALL_WASI_FUNCTIONS); most are stubs there since a proxy has no filesystem.
ENVOY_WASI_FUNCTIONS = frozenset("""
fd_write fd_read fd_seek fd_close fd_fdstat_get fd_fdstat_set_flags fd_fdstat_set_rights environ_get
environ_sizes_get args_get args_sizes_get clock_time_get clock_res_get fd_advise fd_allocate fd_datasync
fd_filestat_set_size fd_filestat_set_times fd_pread fd_pwrite fd_readdir fd_renumber fd_sync fd_tell
path_create_directory path_filestat_set_times path_link path_readlink path_remove_directory path_rename
path_symlink path_unlink_file sock_accept sock_recv sock_send sock_shutdown random_get sched_yield
poll_oneoff proc_exit path_open fd_prestat_get fd_prestat_dir_name path_filestat_get fd_filestat_get
""".split())

I32, I64 = wasmtime.ValType.i32(), wasmtime.ValType.i64()


class WasmTrap(RuntimeError):
    """The module trapped (a Rust panic ends in `unreachable`); carries the last log lines."""


class ProcExit(Exception):
    def __init__(self, code):
        super().__init__(f"proc_exit({code})")
        self.code = code


# -- serialization (spec, "Serialization") ------------------------------------------------------
# Header values are bytes on the wire and need not be UTF-8 (obs-text): they are kept as str
# with undecodable bytes escaped (surrogateescape), so they reach the module unchanged.
def as_bytes(s):
    return s.encode("utf-8", "surrogateescape") if isinstance(s, str) else bytes(s)


def as_text(b):
    return bytes(b).decode("utf-8", "surrogateescape")


def serialize_map(pairs):
    """(count, key/value sizes..., NUL-terminated keys and values), little endian."""
    pairs = [(as_bytes(k), as_bytes(v)) for k, v in pairs]
    out = [struct.pack("<I", len(pairs))]
    out += [struct.pack("<II", len(k), len(v)) for k, v in pairs]
    out += [k + b"\0" + v + b"\0" for k, v in pairs]
    return b"".join(out)


def deserialize_map(data):
    if len(data) < 4:
        return []
    (n,) = struct.unpack_from("<I", data, 0)
    sizes = [struct.unpack_from("<II", data, 4 + 8 * i) for i in range(n)]
    pos, pairs = 4 + 8 * n, []
    for ks, vs in sizes:
        key = as_text(data[pos:pos + ks])
        pos += ks + 1
        value = as_text(data[pos:pos + vs])
        pos += vs + 1
        pairs.append((key, value))
    return pairs


def property_path(path):
    """A property path as segments: ("source", "address"); a str is split on dots."""
    return tuple(path.split(".")) if isinstance(path, str) else tuple(path)


def u64(n):
    """Integer properties are 8 bytes little endian, as Envoy encodes them."""
    return struct.pack("<Q", n)


def header(pairs, name):
    return next((v for k, v in pairs if k.lower() == name.lower()), None)


# -- what the module asked of the host --------------------------------------------------------
@dataclass
class HttpCall:
    token: int
    context_id: int
    cluster: str
    headers: list
    body: bytes
    trailers: list
    timeout_ms: int
    sent_ms: int
    done: bool = False

    def header(self, name):
        return header(self.headers, name)


@dataclass
class LocalResponse:
    status: int
    details: str
    headers: list
    body: bytes
    grpc_status: int


@dataclass
class Metric:
    kind: int
    name: str
    value: int = 0


class Stream:
    """One HTTP request/response through the filter, as Envoy would drive it.

    Bodies are buffered while the filter pauses (each call sees everything held so far, as
    with Envoy's StopIterationAndBuffer) and released when it continues: `upstream_*` is what
    the upstream received, `downstream_*` what the client received.
    """

    def __init__(self, host, context_id, properties):
        self.host, self.id = host, context_id
        self.maps = {REQUEST_HEADERS: [], REQUEST_TRAILERS: [], RESPONSE_HEADERS: [], RESPONSE_TRAILERS: []}
        self.buffers = {REQUEST_BODY: bytearray(), RESPONSE_BODY: bytearray()}
        self.properties = {property_path(k): v for k, v in properties.items()}
        self.filter_state = {}
        self.upstream_headers = self.downstream_headers = None
        self.upstream_body, self.downstream_body = bytearray(), bytearray()
        self.local_response = None
        self.resumed, self.closed = [], []
        self.finished = False

    # The proxy's side of the stream.
    def request_headers(self, headers, end_of_stream=False):
        self.maps[REQUEST_HEADERS] = list(headers)
        action = self.host.call("proxy_on_request_headers", self.id, len(headers), int(end_of_stream))
        if action == CONTINUE and self.local_response is None:
            self._release(HTTP_REQUEST)
        return action

    def request_body(self, chunk, end_of_stream=False):
        return self._body(REQUEST_BODY, "proxy_on_request_body", HTTP_REQUEST, chunk, end_of_stream)

    def request_trailers(self, trailers):
        """Trailers end the request body (as on HTTP/2)."""
        return self._trailers(REQUEST_TRAILERS, "proxy_on_request_trailers", HTTP_REQUEST, trailers)

    def response_trailers(self, trailers):
        return self._trailers(RESPONSE_TRAILERS, "proxy_on_response_trailers", HTTP_RESPONSE, trailers)

    def _trailers(self, kind, callback, direction, trailers):
        if self.local_response is not None:
            return PAUSE
        self.maps[kind] = list(trailers)
        action = self.host.call(callback, self.id, len(trailers))
        if action == CONTINUE and self.local_response is None:
            self._release(direction)
        return action

    def response_headers(self, headers, end_of_stream=False):
        self.maps[RESPONSE_HEADERS] = list(headers)
        status = header(headers, ":status")
        if status:
            self.properties[("response", "code")] = u64(int(status))
        action = self.host.call("proxy_on_response_headers", self.id, len(headers), int(end_of_stream))
        if action == CONTINUE:
            self._release(HTTP_RESPONSE)
        return action

    def response_body(self, chunk, end_of_stream=False):
        return self._body(RESPONSE_BODY, "proxy_on_response_body", HTTP_RESPONSE, chunk, end_of_stream)

    def finish(self):
        """The stream is over: on_done, on_log, on_delete (spec, "Context lifecycle")."""
        self.host.call("proxy_on_done", self.id)
        self.host.call("proxy_on_log", self.id)
        self.host.call("proxy_on_delete", self.id)
        self.finished = True
        for c in self.host.pending_calls():
            if c.context_id == self.id:  # a call dies with its stream; Envoy never answers it
                c.done = True

    def _body(self, kind, callback, direction, chunk, end_of_stream):
        if self.local_response is not None:
            return PAUSE  # the filter answered; nothing more flows
        self.buffers[kind] += chunk
        action = self.host.call(callback, self.id, len(self.buffers[kind]), int(end_of_stream))
        if action == CONTINUE and self.local_response is None:
            self._release(direction)
        return action

    def _release(self, direction):
        """Forwards headers (once) and whatever body is held, in one direction."""
        if direction == HTTP_REQUEST:
            if self.upstream_headers is None:
                self.upstream_headers = list(self.maps[REQUEST_HEADERS])
            self.upstream_body += self.buffers[REQUEST_BODY]
            self.buffers[REQUEST_BODY].clear()
        else:
            if self.downstream_headers is None:
                self.downstream_headers = list(self.maps[RESPONSE_HEADERS])
            self.downstream_body += self.buffers[RESPONSE_BODY]
            self.buffers[RESPONSE_BODY].clear()

    def upstream_header(self, name):
        return header(self.upstream_headers or [], name)

    def downstream_header(self, name):
        return header(self.downstream_headers or [], name)


class SharedQueues:
    """Envoy's shared queues across the VMs of one node: a queue is keyed by the registering VM's
    vm_id and its name; an enqueue notifies the registering VM, which Envoy does by posting
    proxy_on_queue_ready to that VM's thread: here it waits for `WasmHost.deliver_queue_ready`."""

    def __init__(self):
        self.by_key = {}   # (vm_id, name) -> queue id
        self.items = {}    # queue id -> list of bytes
        self.owner = {}    # queue id -> WasmHost


class WasmHost:
    """One proxy-wasm VM with one plugin (root context), on its own wasmtime engine and store."""

    ROOT_ID = 1

    def __init__(self, wasm=WASM, env=None, clusters=("audit_sink",), properties=None, now_ms=None, seed=None,
                 root_id="proxy_audit", filter_state=True, fuel=False, vm_id="proxy_audit", queues=None,
                 shared_queues=True):
        self.env = dict(env or {})
        self.filter_state = filter_state  # False: a host that, as ABI 0.2.1 allows, keeps no filter state
        self.clusters = set(clusters)
        self.now_ns = (now_ms if now_ms is not None else time.time_ns() // 1_000_000) * 1_000_000
        self.boot_ns = self.now_ns
        self.random = random.Random(seed if seed is not None else os.urandom(16))
        self.properties = {("plugin_name",): root_id.encode(), ("plugin_root_id",): root_id.encode(),
                           **{property_path(k): v for k, v in (properties or {}).items()}}
        self.logs = []            # (level name, message), proxy_log and stdout/stderr alike
        self.tick_period_ms = 0
        self.http_calls = []
        self.metrics = {}         # id -> Metric
        self.shared_data = {}     # key -> (value, cas)
        self.vm_id = vm_id
        self.queues = queues if queues is not None else SharedQueues()  # shared by the VMs of one node
        self.shared_queues = shared_queues  # False: a host without them (UNIMPLEMENTED)
        self.queue_ready = []     # queue ids with proxy_on_queue_ready owed to this VM
        self.plugin_configuration = self.vm_configuration = b""
        self.streams = {}
        self.next_context_id = self.ROOT_ID + 1
        self.next_token = 1
        self.active = self.ROOT_ID  # context of the callback running now (set_effective_context moves it)
        self.call_response = None   # (headers, body, trailers) during proxy_on_http_call_response
        self.retiring = self.retired = False  # root context between proxy_on_done and proxy_done
        self._cx = None             # wasmtime Caller while a host function runs

        config = wasmtime.Config()
        config.consume_fuel = fuel  # fuel = wasm instructions executed (bench/wasm_profile.py)
        self.engine = wasmtime.Engine(config)
        self.store = wasmtime.Store(self.engine)
        if fuel:
            self.store.set_fuel(2**62)
        self.module = wasmtime.Module.from_file(self.engine, str(wasm))
        linker = wasmtime.Linker(self.engine)
        self.provided = self._link(linker)
        self.instance = linker.instantiate(self.store, self.module)
        self.exports = self.instance.exports(self.store)
        self.memory = self.exports["memory"]

    # -- driving the module ---------------------------------------------------------------
    def call(self, name, *args, context=None):
        """Calls an export with `context` (default: the first argument) as the active context."""
        try:
            fn = self.exports[name]
        except KeyError:
            return None  # callbacks are optional (spec)
        saved = self.active
        self.active = context if context is not None else (args[0] if args else self.ROOT_ID)
        try:
            return fn(self._store(), *args)
        except wasmtime.Trap as trap:
            tail = "\n".join(f"[{lvl}] {msg}" for lvl, msg in self.logs[-5:])
            raise WasmTrap(f"{name}{args} trapped: {trap.message}\n{tail}") from None
        finally:
            self.active = saved

    def start(self, plugin_configuration, vm_configuration=b""):
        """Loads the VM and the plugin as Envoy does; returns what on_configure answered."""
        if isinstance(plugin_configuration, dict):
            plugin_configuration = json.dumps(plugin_configuration)
        if isinstance(plugin_configuration, str):
            plugin_configuration = plugin_configuration.encode()
        self.plugin_configuration, self.vm_configuration = plugin_configuration, vm_configuration
        self.call("_initialize", context=self.ROOT_ID)
        self.call("proxy_on_context_create", self.ROOT_ID, 0)
        if not self.call("proxy_on_vm_start", self.ROOT_ID, len(vm_configuration)):
            return False
        return bool(self.call("proxy_on_configure", self.ROOT_ID, len(plugin_configuration)))

    def reconfigure(self, plugin_configuration):
        """proxy_on_configure again on the live root context (a config change Envoy applies in place)."""
        if isinstance(plugin_configuration, dict):
            plugin_configuration = json.dumps(plugin_configuration)
        self.plugin_configuration = plugin_configuration.encode() if isinstance(plugin_configuration, str) else plugin_configuration
        return bool(self.call("proxy_on_configure", self.ROOT_ID, len(self.plugin_configuration)))

    def retire(self):
        """The plugin is removed (config change, drain): proxy_on_done on the root context.
        True when it may go at once; otherwise `retired` turns True when it calls proxy_done."""
        done = bool(self.call("proxy_on_done", self.ROOT_ID))
        self.retiring = not done
        self.retired = done
        return done

    def new_stream(self, source_address="127.0.0.1:50000", properties=None):
        """A new HTTP stream (context) with its connection properties; `properties` adds more."""
        sid = self.next_context_id
        self.next_context_id += 1
        props = {("source", "address"): source_address.encode(), ("request", "time"): u64(self.now_ns),
                 **(properties or {})}
        stream = self.streams[sid] = Stream(self, sid, props)
        self.call("proxy_on_context_create", sid, self.ROOT_ID)
        return stream

    def advance(self, ms):
        """Moves the clock; HTTP calls whose timeout passed fail as Envoy fails them (no headers)."""
        self.now_ns += int(ms * 1_000_000)
        for c in self.pending_calls():
            if self.now_ns // 1_000_000 >= c.sent_ms + c.timeout_ms:
                self.respond(c, None)

    def tick(self, ms=None):
        """One timer period (or `ms`) passes, then proxy_on_tick."""
        self.advance(self.tick_period_ms if ms is None else ms)
        self.call("proxy_on_tick", self.ROOT_ID)

    def pending_calls(self):
        return [c for c in self.http_calls if not c.done]

    def respond(self, call, status=200, body=b"", headers=(), trailers=()):
        """Answers a dispatched HTTP call; `status=None` is a reset or timeout (no headers)."""
        assert not call.done, "answered twice"
        call.done = True
        if status is not None:
            self.call_response = ([(":status", str(status)), *headers], bytes(body), list(trailers))
        hdrs, body, trailers = self.call_response or ([], b"", [])
        try:
            self.call("proxy_on_http_call_response", call.context_id, call.token, len(hdrs), len(body), len(trailers))
        finally:
            self.call_response = None

    def metric(self, name):
        return next((m.value for m in self.metrics.values() if m.name == name), None)

    def log_text(self):
        return "\n".join(f"[{lvl}] {msg}" for lvl, msg in self.logs)

    # -- memory -------------------------------------------------------------------------------
    def _store(self):
        return self._cx if self._cx is not None else self.store

    def read(self, ptr, size):
        if size == 0:
            return b""
        if ptr + size > self.memory.data_len(self._store()):
            raise MemoryError(f"read {ptr}+{size} out of bounds")
        return bytes(self.memory.read(self._store(), ptr, ptr + size))

    def write(self, ptr, data):
        self.memory.write(self._store(), data, ptr)

    def write_u32(self, ptr, n):
        self.write(ptr, struct.pack("<I", n & 0xFFFFFFFF))

    def write_u64(self, ptr, n):
        self.write(ptr, struct.pack("<Q", n & 0xFFFFFFFFFFFFFFFF))

    def give(self, data, ptr_ptr, size_ptr):
        """Returns bytes to the module: memory from its allocator, address and size written back."""
        ptr = 0
        if data:
            ptr = self.exports["proxy_on_memory_allocate"](self._store(), len(data))
            if not ptr:
                return INTERNAL_FAILURE
            self.write(ptr, data)
        self.write_u32(ptr_ptr, ptr)
        self.write_u32(size_ptr, len(data))
        return OK

    def text(self, ptr, size):
        return as_text(self.read(ptr, size))

    # -- linking ------------------------------------------------------------------------------
    def _link(self, linker):
        """Defines every host function below; names are taken from the method names."""
        provided = set()
        for attr in dir(type(self)):
            for prefix, module in (("proxy_", "env"), ("wasi_", "wasi_snapshot_preview1")):
                if attr.startswith(prefix):
                    name = attr if module == "env" else attr[len(prefix):]
                    params, results = getattr(type(self), attr).__annotations__.get("return", ((), (I32,)))
                    linker.define_func(module, name, wasmtime.FuncType(list(params), list(results)),
                                       self._bind(getattr(self, attr), params), access_caller=True)
                    provided.add((module, name))
        return provided

    def _bind(self, method, params):
        def host_function(caller, *args):
            saved, self._cx = self._cx, caller
            try:
                args = [a & (0xFFFFFFFF if t == I32 else 0xFFFFFFFFFFFFFFFF) for a, t in zip(args, params)]
                return method(*args)
            except (MemoryError, IndexError):
                return INVALID_MEMORY_ACCESS
            finally:
                self._cx = saved
        return host_function

    def _context(self):
        return self.streams.get(self.active)

    # Each host function declares its wasm signature as its return annotation:
    # (param types, result types); the default result is one i32 status.
    def sig(*params, results=(I32,)):
        return (params, results)

    # -- env: logging, clock, timer -----------------------------------------------------------
    def proxy_log(self, level, ptr, size) -> sig(I32, I32, I32):
        if level > CRITICAL:
            return BAD_ARGUMENT
        self.logs.append((LEVELS[level], self.text(ptr, size)))
        return OK

    def proxy_get_log_level(self, ret) -> sig(I32):
        self.write_u32(ret, TRACE)
        return OK

    def proxy_get_current_time_nanoseconds(self, ret) -> sig(I32):
        self.write_u64(ret, self.now_ns)
        return OK

    def proxy_set_tick_period_milliseconds(self, period) -> sig(I32):
        self.tick_period_ms = period
        return OK

    # -- env: context lifecycle ----------------------------------------------------------------
    def proxy_done(self) -> sig():
        if not self.retiring:
            return NOT_FOUND
        self.retiring, self.retired = False, True
        return OK

    def proxy_set_effective_context(self, context_id) -> sig(I32):
        if context_id != self.ROOT_ID and context_id not in self.streams:
            return BAD_ARGUMENT
        self.active = context_id
        return OK

    # -- env: buffers -------------------------------------------------------------------------
    def _buffer(self, kind):
        """The buffer `kind` as a bytearray to read or change, or an error status."""
        if kind > FOREIGN_ARGUMENTS:
            return BAD_ARGUMENT
        if kind == PLUGIN_CONFIGURATION:
            return bytearray(self.plugin_configuration)
        if kind == VM_CONFIGURATION:
            return bytearray(self.vm_configuration)
        if kind == CALL_RESPONSE_BODY and self.call_response is not None:
            return bytearray(self.call_response[1])
        stream = self._context()
        if stream is not None and kind in stream.buffers:
            return stream.buffers[kind]
        return NOT_FOUND

    def proxy_get_buffer_bytes(self, kind, start, max_size, ptr_ptr, size_ptr) -> sig(I32, I32, I32, I32, I32):
        buf = self._buffer(kind)
        if isinstance(buf, int):
            return buf
        if start > len(buf):
            return BAD_ARGUMENT
        return self.give(bytes(buf[start:start + max_size]), ptr_ptr, size_ptr)

    def proxy_get_buffer_status(self, kind, size_ptr, flags_ptr) -> sig(I32, I32, I32):
        buf = self._buffer(kind)
        if isinstance(buf, int):
            return buf
        self.write_u32(size_ptr, len(buf))
        self.write_u32(flags_ptr, 0)
        return OK

    def proxy_set_buffer_bytes(self, kind, start, size, ptr, value_size) -> sig(I32, I32, I32, I32, I32):
        stream = self._context()
        if kind > FOREIGN_ARGUMENTS:
            return BAD_ARGUMENT
        if stream is None or kind not in stream.buffers:
            return NOT_FOUND
        buf = stream.buffers[kind]
        start = min(start, len(buf))
        buf[start:start + size] = self.read(ptr, value_size)
        return OK

    # -- env: header maps ---------------------------------------------------------------------
    def _map(self, kind):
        """The header map `kind` as a list of pairs (changes stick), or an error status.

        As in Envoy, a failed HTTP call (reset, timeout) has no response maps at all: asking
        for a value in them is BAD_ARGUMENT, not NOT_FOUND."""
        if kind in (CALL_RESPONSE_HEADERS, CALL_RESPONSE_TRAILERS):
            if self.call_response is None:
                return BAD_ARGUMENT
            return self.call_response[0] if kind == CALL_RESPONSE_HEADERS else self.call_response[2]
        if kind in (GRPC_INITIAL_METADATA, GRPC_TRAILING_METADATA):
            return []
        stream = self._context()
        if kind > CALL_RESPONSE_TRAILERS or stream is None:
            return BAD_ARGUMENT
        return stream.maps[kind]

    def proxy_get_header_map_pairs(self, kind, ptr_ptr, size_ptr) -> sig(I32, I32, I32):
        pairs = self._map(kind)
        if pairs == BAD_ARGUMENT and kind <= CALL_RESPONSE_TRAILERS:
            pairs = []  # Envoy: a map that is not there reads as empty
        return pairs if isinstance(pairs, int) else self.give(serialize_map(pairs), ptr_ptr, size_ptr)

    def proxy_get_header_map_size(self, kind, size_ptr) -> sig(I32, I32):
        pairs = self._map(kind)
        if isinstance(pairs, int):
            return pairs
        self.write_u32(size_ptr, len(serialize_map(pairs)))
        return OK

    def proxy_set_header_map_pairs(self, kind, ptr, size) -> sig(I32, I32, I32):
        pairs = self._map(kind)
        if isinstance(pairs, int):
            return pairs
        pairs[:] = deserialize_map(self.read(ptr, size))
        return OK

    def proxy_get_header_map_value(self, kind, key_ptr, key_size, ptr_ptr, size_ptr) -> sig(I32, I32, I32, I32, I32):
        pairs = self._map(kind)
        if isinstance(pairs, int):
            return pairs
        value = header(pairs, self.text(key_ptr, key_size))
        return NOT_FOUND if value is None else self.give(as_bytes(value), ptr_ptr, size_ptr)

    def proxy_add_header_map_value(self, kind, key_ptr, key_size, ptr, size) -> sig(I32, I32, I32, I32, I32):
        pairs = self._map(kind)
        if isinstance(pairs, int):
            return pairs
        pairs.append((self.text(key_ptr, key_size), self.text(ptr, size)))
        return OK

    def proxy_replace_header_map_value(self, kind, key_ptr, key_size, ptr, size) -> sig(I32, I32, I32, I32, I32):
        pairs = self._map(kind)
        if isinstance(pairs, int):
            return pairs
        key = self.text(key_ptr, key_size)
        pairs[:] = [(k, v) for k, v in pairs if k.lower() != key.lower()] + [(key, self.text(ptr, size))]
        return OK

    def proxy_remove_header_map_value(self, kind, key_ptr, key_size) -> sig(I32, I32, I32):
        pairs = self._map(kind)
        if isinstance(pairs, int):
            return pairs
        key = self.text(key_ptr, key_size).lower()
        pairs[:] = [(k, v) for k, v in pairs if k.lower() != key]
        return OK

    # -- env: streams and local responses -----------------------------------------------------
    def proxy_continue_stream(self, stream_type) -> sig(I32):
        stream = self._context()
        if stream_type > UPSTREAM:
            return BAD_ARGUMENT
        if stream_type in (DOWNSTREAM, UPSTREAM) or stream is None:
            return UNIMPLEMENTED
        stream.resumed.append(stream_type)
        stream._release(stream_type)
        return OK

    def proxy_close_stream(self, stream_type) -> sig(I32):
        stream = self._context()
        if stream_type > UPSTREAM or stream is None:
            return BAD_ARGUMENT
        stream.closed.append(stream_type)
        return OK

    def proxy_send_local_response(self, status, det_ptr, det_size, body_ptr, body_size, hdr_ptr, hdr_size,
                                  grpc_status) -> sig(I32, I32, I32, I32, I32, I32, I32, I32):
        stream = self._context()
        if stream is None:
            return BAD_ARGUMENT
        stream.local_response = LocalResponse(status, self.text(det_ptr, det_size),
                                              deserialize_map(self.read(hdr_ptr, hdr_size)),
                                              self.read(body_ptr, body_size), grpc_status)
        stream.properties[("response", "code")] = u64(status)
        return OK

    def proxy_get_status(self, code_ptr, msg_ptr_ptr, msg_size_ptr) -> sig(I32, I32, I32):
        status = header(self.call_response[0], ":status") if self.call_response else None
        self.write_u32(code_ptr, int(status) if status else 0)
        return self.give(b"", msg_ptr_ptr, msg_size_ptr)

    # -- env: HTTP and gRPC calls -------------------------------------------------------------
    def proxy_http_call(self, up_ptr, up_size, hdr_ptr, hdr_size, body_ptr, body_size, trl_ptr, trl_size,
                        timeout_ms, token_ptr) -> sig(I32, I32, I32, I32, I32, I32, I32, I32, I32, I32):
        cluster = self.text(up_ptr, up_size)
        headers = deserialize_map(self.read(hdr_ptr, hdr_size))
        if cluster not in self.clusters or any(header(headers, h) is None for h in (":method", ":path", ":authority")):
            return BAD_ARGUMENT
        token, self.next_token = self.next_token, self.next_token + 1
        self.http_calls.append(HttpCall(token, self.active, cluster, headers, self.read(body_ptr, body_size),
                                        deserialize_map(self.read(trl_ptr, trl_size)), timeout_ms,
                                        self.now_ns // 1_000_000))
        self.write_u32(token_ptr, token)
        return OK

    # This host has no gRPC upstreams: every cluster is unknown (spec: PARSE_FAILURE).
    def proxy_grpc_call(self, *_args) -> sig(*[I32] * 12):
        return PARSE_FAILURE

    def proxy_grpc_stream(self, *_args) -> sig(*[I32] * 9):
        return PARSE_FAILURE

    def proxy_grpc_send(self, *_args) -> sig(I32, I32, I32, I32):
        return NOT_FOUND

    def proxy_grpc_cancel(self, _token) -> sig(I32):
        return NOT_FOUND

    def proxy_grpc_close(self, _token) -> sig(I32):
        return NOT_FOUND

    # -- env: properties ----------------------------------------------------------------------
    def proxy_get_property(self, path_ptr, path_size, ptr_ptr, size_ptr) -> sig(I32, I32, I32, I32):
        path = tuple(self.text(path_ptr, path_size).split("\0"))
        stream = self._context()
        for source in ((stream.filter_state, stream.properties) if stream else ()) + (self.properties,):
            if path in source:
                return self.give(source[path], ptr_ptr, size_ptr)
        return NOT_FOUND

    def proxy_set_property(self, path_ptr, path_size, ptr, size) -> sig(I32, I32, I32, I32):
        """Like Envoy, a property the filter sets is filter state of its stream (or of the VM)."""
        if not self.filter_state:
            return NOT_FOUND  # spec: "no property found at the requested path"
        path = tuple(self.text(path_ptr, path_size).split("\0"))
        stream = self._context()
        (stream.filter_state if stream else self.properties)[path] = self.read(ptr, size)
        return OK

    # -- env: shared data and queues ----------------------------------------------------------
    def proxy_get_shared_data(self, key_ptr, key_size, ptr_ptr, size_ptr, cas_ptr) -> sig(I32, I32, I32, I32, I32):
        entry = self.shared_data.get(self.text(key_ptr, key_size))
        if entry is None:
            return NOT_FOUND
        self.write_u32(cas_ptr, entry[1])
        return self.give(entry[0], ptr_ptr, size_ptr)

    def proxy_set_shared_data(self, key_ptr, key_size, ptr, size, cas) -> sig(I32, I32, I32, I32, I32):
        key = self.text(key_ptr, key_size)
        current = self.shared_data.get(key, (b"", 0))
        if cas and cas != current[1]:
            return CAS_MISMATCH
        self.shared_data[key] = (self.read(ptr, size), current[1] + 1)
        return OK

    def proxy_register_shared_queue(self, name_ptr, name_size, id_ptr) -> sig(I32, I32, I32):
        if not self.shared_queues:
            return UNIMPLEMENTED
        q = self.queues
        key = (self.vm_id, self.text(name_ptr, name_size))
        qid = q.by_key.setdefault(key, len(q.by_key) + 1)
        q.items.setdefault(qid, [])
        q.owner[qid] = self  # re-registering moves the notifications to this VM, as in Envoy
        self.write_u32(id_ptr, qid)
        return OK

    def proxy_resolve_shared_queue(self, vm_ptr, vm_size, name_ptr, name_size, id_ptr) -> sig(I32, I32, I32, I32, I32):
        if not self.shared_queues:
            return UNIMPLEMENTED
        qid = self.queues.by_key.get((self.text(vm_ptr, vm_size), self.text(name_ptr, name_size)))
        if qid is None:
            return NOT_FOUND
        self.write_u32(id_ptr, qid)
        return OK

    def proxy_enqueue_shared_queue(self, qid, ptr, size) -> sig(I32, I32, I32):
        if not self.shared_queues:
            return UNIMPLEMENTED
        if qid not in self.queues.items:
            return NOT_FOUND
        self.queues.items[qid].append(self.read(ptr, size))
        owner = self.queues.owner[qid]
        if qid not in owner.queue_ready:
            owner.queue_ready.append(qid)
        return OK

    def proxy_dequeue_shared_queue(self, qid, ptr_ptr, size_ptr) -> sig(I32, I32, I32):
        if not self.shared_queues:
            return UNIMPLEMENTED
        if qid not in self.queues.items:
            return NOT_FOUND
        items = self.queues.items[qid]
        return self.give(items.pop(0), ptr_ptr, size_ptr) if items else EMPTY

    def deliver_queue_ready(self):
        """Runs the proxy_on_queue_ready callbacks owed to this VM."""
        owed, self.queue_ready = self.queue_ready, []
        for qid in owed:
            self.call("proxy_on_queue_ready", self.ROOT_ID, qid)

    # -- env: metrics -------------------------------------------------------------------------
    def proxy_define_metric(self, kind, name_ptr, name_size, id_ptr) -> sig(I32, I32, I32, I32):
        if kind > HISTOGRAM:
            return BAD_ARGUMENT
        name = self.text(name_ptr, name_size)
        mid = next((i for i, m in self.metrics.items() if m.name == name and m.kind == kind), None)
        if mid is None:
            mid = len(self.metrics) + 1
            self.metrics[mid] = Metric(kind, name)
        self.write_u32(id_ptr, mid)
        return OK

    def proxy_increment_metric(self, mid, delta) -> sig(I32, I64):
        metric = self.metrics.get(mid)
        if metric is None:
            return NOT_FOUND
        delta = delta - (1 << 64) if delta >= 1 << 63 else delta
        if metric.kind == COUNTER and delta < 0:
            return BAD_ARGUMENT
        metric.value += delta
        return OK

    def proxy_record_metric(self, mid, value) -> sig(I32, I64):
        if mid not in self.metrics:
            return NOT_FOUND
        self.metrics[mid].value = value
        return OK

    def proxy_get_metric(self, mid, ret) -> sig(I32, I32):
        if mid not in self.metrics:
            return NOT_FOUND
        self.write_u64(ret, self.metrics[mid].value)
        return OK

    def proxy_call_foreign_function(self, *_args) -> sig(*[I32] * 6):
        return NOT_FOUND  # no foreign functions registered

    # -- wasi_snapshot_preview1: what Envoy provides ------------------------------------------
    def wasi_fd_write(self, fd, iovs, iovs_len, nwritten_ptr) -> sig(I32, I32, I32, I32):
        if fd not in (1, 2):
            return E_BADF
        data = b"".join(self.read(*struct.unpack("<II", self.read(iovs + 8 * i, 8))) for i in range(iovs_len))
        self.logs += [("info" if fd == 1 else "error", line) for line in data.decode("utf-8", "replace").splitlines()]
        self.write_u32(nwritten_ptr, len(data))
        return E_SUCCESS

    def wasi_fd_read(self, *_args) -> sig(I32, I32, I32, I32):
        return E_NOSYS

    def wasi_fd_seek(self, *_args) -> sig(I32, I64, I32, I32):
        return E_NOSYS

    def wasi_fd_close(self, _fd) -> sig(I32):
        return E_NOSYS

    def wasi_fd_fdstat_get(self, fd, ptr) -> sig(I32, I32):
        if fd not in (1, 2):
            return E_BADF
        self.write(ptr, struct.pack("<QQQ", 2, 64, 0))  # character device, may write
        return E_SUCCESS

    def wasi_fd_prestat_get(self, _fd, _ptr) -> sig(I32, I32):
        return E_BADF  # no preopened directories: no filesystem

    def wasi_fd_prestat_dir_name(self, *_args) -> sig(I32, I32, I32):
        return E_NOSYS

    def wasi_fd_filestat_get(self, _fd, _ptr) -> sig(I32, I32):
        return E_BADF

    def wasi_path_open(self, *_args) -> sig(I32, I32, I32, I32, I32, I64, I64, I32, I32):
        return E_NOENT

    def _environ(self):
        return [f"{k}={v}".encode() + b"\0" for k, v in self.env.items()]

    def wasi_environ_sizes_get(self, count_ptr, size_ptr) -> sig(I32, I32):
        entries = self._environ()
        self.write_u32(count_ptr, len(entries))
        self.write_u32(size_ptr, sum(map(len, entries)))
        return E_SUCCESS

    def wasi_environ_get(self, array_ptr, buf_ptr) -> sig(I32, I32):
        for i, entry in enumerate(self._environ()):
            self.write_u32(array_ptr + 4 * i, buf_ptr)
            self.write(buf_ptr, entry)
            buf_ptr += len(entry)
        return E_SUCCESS

    def wasi_args_sizes_get(self, argc_ptr, size_ptr) -> sig(I32, I32):
        self.write_u32(argc_ptr, 0)
        self.write_u32(size_ptr, 0)
        return E_SUCCESS

    def wasi_args_get(self, _argv, _buf) -> sig(I32, I32):
        return E_SUCCESS

    def wasi_clock_time_get(self, clock_id, _precision, ret) -> sig(I32, I64, I32):
        if clock_id not in (0, 1):
            return E_NOTSUP
        self.write_u64(ret, self.now_ns if clock_id == 0 else self.now_ns - self.boot_ns)
        return E_SUCCESS

    def wasi_clock_res_get(self, clock_id, ret) -> sig(I32, I32):
        if clock_id not in (0, 1):
            return E_NOTSUP
        self.write_u64(ret, 1)
        return E_SUCCESS

    def wasi_random_get(self, ptr, size) -> sig(I32, I32):
        if size > 65536:
            return E_INVAL
        self.write(ptr, self.random.randbytes(size))
        return E_SUCCESS

    def wasi_sched_yield(self) -> sig():
        return E_SUCCESS

    def wasi_poll_oneoff(self, *_args) -> sig(I32, I32, I32, I32):
        return E_NOSYS

    def wasi_proc_exit(self, code) -> sig(I32, results=()):
        raise ProcExit(code)

    del sig
