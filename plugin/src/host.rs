//! The only place that talks to the host: small wrappers over
//! `proxy_wasm::hostcalls` that turn every host failure into `None`/`false`
//! instead of a panic (the SDK's trait helpers unwrap host errors). Where a
//! hostcall itself panics on something a host may legitimately hand back (a
//! header value that is not UTF-8, a status ABI 0.2.1 allows), these avoid it;
//! `host-tests/test_wasm_host.py` runs such hosts.

use proxy_wasm::hostcalls;
use proxy_wasm::types::{BufferType, LogLevel, MapType};
use std::time::UNIX_EPOCH;

pub fn log(level: LogLevel, msg: &str) {
    let _ = hostcalls::log(level, msg);
}

pub fn now_ms() -> u64 {
    hostcalls::get_current_time()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_millis() as u64)
}

/// Header values are bytes and need not be UTF-8 (HTTP/1 obs-text such as
/// `caf\xe9`): read them as bytes, since the SDK's `get_map`/`get_map_value`
/// unwrap a UTF-8 conversion and one such header would crash the VM.
pub fn headers(map: MapType) -> Vec<(String, String)> {
    let pairs = hostcalls::get_map_bytes(map).unwrap_or_default();
    pairs.into_iter().map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned())).collect()
}

pub fn header(map: MapType, name: &str) -> Option<String> {
    let value = hostcalls::get_map_value_bytes(map, name).ok().flatten()?;
    Some(String::from_utf8_lossy(&value).into_owned())
}

/// The `:status` of an HTTP call's answer; `None` for a failed call (reset or
/// timeout: `num_headers` is 0 and the host has no response map at all, so
/// Envoy refuses a header lookup with BAD_ARGUMENT, on which the SDK panics).
pub fn call_status(num_headers: usize) -> Option<u16> {
    if num_headers == 0 {
        return None;
    }
    header(MapType::HttpCallResponseHeaders, ":status").and_then(|s| s.parse().ok())
}

/// False when the host refuses (the headers have left, say).
pub fn set_header(map: MapType, name: &str, value: &str) -> bool {
    crate::raw::replace_header(map, name, value)
}

pub fn remove_header(map: MapType, name: &str) -> bool {
    crate::raw::remove_header(map, name)
}

pub fn property(path: &[&str]) -> Option<Vec<u8>> {
    hostcalls::get_property(path.to_vec()).ok().flatten()
}

pub fn property_string(path: &[&str]) -> Option<String> {
    property(path).and_then(|b| String::from_utf8(b).ok()).filter(|s| !s.is_empty())
}

/// Filter state for access logs (Envoy keeps it as `wasm.<path>`). A host
/// without filter state may answer NOT_FOUND (ABI 0.2.1), on which the SDK's
/// `set_property` panics, so this calls the host function directly.
pub fn set_property(path: &[&str], value: &[u8]) {
    let path = path.join("\0");
    raw_set_property(path.as_bytes(), value);
}

#[cfg(target_arch = "wasm32")]
fn raw_set_property(path: &[u8], value: &[u8]) {
    #[link(wasm_import_module = "env")]
    extern "C" {
        fn proxy_set_property(path_data: *const u8, path_size: usize, value_data: *const u8, value_size: usize) -> u32;
    }
    // SAFETY: the host only reads both slices, during the call; the status is
    // a plain integer (any value is fine, none is acted on).
    let _status = unsafe { proxy_set_property(path.as_ptr(), path.len(), value.as_ptr(), value.len()) };
}

#[cfg(not(target_arch = "wasm32"))]
fn raw_set_property(_path: &[u8], _value: &[u8]) {}

pub fn buffer(kind: BufferType, start: usize, len: usize) -> Vec<u8> {
    hostcalls::get_buffer(kind, start, len).ok().flatten().unwrap_or_default()
}

pub fn set_buffer(kind: BufferType, start: usize, len: usize, value: &[u8]) -> bool {
    crate::raw::set_buffer(kind, start, len, value)
}

/// Resumes a paused request (or response) stream.
pub fn resume(response: bool) -> bool {
    crate::raw::continue_stream(response)
}

/// Answers the request locally with the contract's JSON error body.
pub fn send_json(status: u32, body: &str, audit_id: &str) -> bool {
    let headers = [("content-type", "application/json"), ("x-proxy-audit-id", audit_id)];
    crate::raw::send_local_response(status, &headers, body.as_bytes())
}

/// POSTs one batch to the log service's cluster; the token of the call.
pub fn post_batch(
    ex: &proxy_audit_core::config::ExporterConfig,
    batch: &proxy_audit_core::export::Batch,
) -> Result<u32, proxy_wasm::types::Status> {
    let len = batch.body.len().to_string();
    let headers = vec![
        (":method", "POST"),
        (":path", ex.path.as_str()),
        (":authority", ex.authority.as_str()),
        ("content-type", batch.content_type),
        ("content-length", len.as_str()),
        ("user-agent", "proxy-audit"),
    ];
    let timeout = std::time::Duration::from_millis(ex.timeout_ms);
    hostcalls::dispatch_http_call(&ex.cluster, headers, Some(&batch.body), vec![], timeout)
}

/// Sends a request to an upstream cluster (a model call retried); the
/// token of the call.
pub fn call_upstream(cluster: &str, headers: &[(String, String)], body: &[u8], timeout_ms: u32) -> Option<u32> {
    let pairs: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let timeout = std::time::Duration::from_millis(u64::from(timeout_ms));
    hostcalls::dispatch_http_call(cluster, pairs, Some(body), vec![], timeout).ok()
}

/// The answer to an HTTP call, in its response callback: headers (`:status`
/// included) and body; `None` for a failed call.
pub fn call_response(num_headers: usize, body_size: usize) -> Option<proxy_audit_core::exchange::CallResponse> {
    if num_headers == 0 {
        return None;
    }
    let body = if body_size == 0 { Vec::new() } else { buffer(BufferType::HttpCallResponseBody, 0, body_size) };
    Some((headers(MapType::HttpCallResponseHeaders), body))
}

/// Answers locally with this status, headers and body.
pub fn send_reply(status: u16, headers: &[(String, String)], body: &[u8]) -> bool {
    let pairs: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    crate::raw::send_local_response(u32::from(status), &pairs, body)
}

/// 32 random bytes from WASI `random_get`, which every proxy-wasm host that
/// runs wasip1 modules provides; falls back to time-derived bytes.
pub fn random_seed() -> [u8; 32] {
    let mut seed = [0u8; 32];
    if !wasi_random(&mut seed) {
        log(
            LogLevel::Warn,
            "proxy-audit: the host gave no random bytes; event ids and emitter epochs fall back to the clock",
        );
        let t = now_ms().to_le_bytes();
        for (i, b) in seed.iter_mut().enumerate() {
            *b = t.get(i % 8).copied().unwrap_or(0) ^ (i as u8);
        }
    }
    seed
}

#[cfg(target_arch = "wasm32")]
fn wasi_random(buf: &mut [u8]) -> bool {
    #[link(wasm_import_module = "wasi_snapshot_preview1")]
    extern "C" {
        fn random_get(buf: *mut u8, len: usize) -> u16;
    }
    // SAFETY: the host writes exactly `len` bytes into our buffer.
    unsafe { random_get(buf.as_mut_ptr(), buf.len()) == 0 }
}

#[cfg(not(target_arch = "wasm32"))]
fn wasi_random(_buf: &mut [u8]) -> bool {
    false
}

// Shared queues (the singleton shipping service). The SDK's wrappers panic on
// any status but the few Envoy returns; a host without shared queues answers
// UNIMPLEMENTED, so these call the ABI directly and turn every failure into
// `None`/`false`.

#[cfg(target_arch = "wasm32")]
#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_register_shared_queue(name_data: *const u8, name_size: usize, return_id: *mut u32) -> u32;
    fn proxy_resolve_shared_queue(
        vm_id_data: *const u8,
        vm_id_size: usize,
        name_data: *const u8,
        name_size: usize,
        return_id: *mut u32,
    ) -> u32;
    fn proxy_enqueue_shared_queue(queue_id: u32, value_data: *const u8, value_size: usize) -> u32;
    fn proxy_dequeue_shared_queue(queue_id: u32, return_value_data: *mut *mut u8, return_value_size: *mut usize)
        -> u32;
}

/// ABI status OK.
#[cfg(target_arch = "wasm32")]
const STATUS_OK: u32 = 0;

/// Registers a queue this VM reads (`proxy_on_queue_ready`); its id.
#[cfg(target_arch = "wasm32")]
pub fn register_queue(name: &str) -> Option<u32> {
    let mut id = 0u32;
    // SAFETY: the host reads `name` and writes one u32 during the call.
    let status = unsafe { proxy_register_shared_queue(name.as_ptr(), name.len(), &mut id) };
    (status == STATUS_OK).then_some(id)
}

/// The id of the queue `name` that the VM `vm_id` registered.
#[cfg(target_arch = "wasm32")]
pub fn resolve_queue(vm_id: &str, name: &str) -> Option<u32> {
    let mut id = 0u32;
    // SAFETY: the host reads both strings and writes one u32 during the call.
    let status = unsafe { proxy_resolve_shared_queue(vm_id.as_ptr(), vm_id.len(), name.as_ptr(), name.len(), &mut id) };
    (status == STATUS_OK).then_some(id)
}

/// Puts one message on a queue; false when the host refuses it.
#[cfg(target_arch = "wasm32")]
pub fn enqueue(queue_id: u32, value: &[u8]) -> bool {
    // SAFETY: the host copies `value` during the call.
    unsafe { proxy_enqueue_shared_queue(queue_id, value.as_ptr(), value.len()) == STATUS_OK }
}

/// Takes the next message off a queue this VM registered (an empty message
/// is `Some` of nothing); `None` when the queue is empty or the host refuses.
#[cfg(target_arch = "wasm32")]
pub fn dequeue(queue_id: u32) -> Option<Vec<u8>> {
    let mut data: *mut u8 = std::ptr::null_mut();
    let mut size: usize = 0;
    // SAFETY: on OK the host hands over a buffer it allocated through this
    // module's `proxy_on_memory_allocate` (the global allocator), `size`
    // bytes long, which we then own, exactly as the SDK's own wrapper does.
    unsafe {
        if proxy_dequeue_shared_queue(queue_id, &mut data, &mut size) != STATUS_OK {
            return None;
        }
        if data.is_null() {
            return Some(Vec::new());
        }
        Some(Vec::from_raw_parts(data, size, size))
    }
}

#[cfg(not(target_arch = "wasm32"))]
pub fn register_queue(_name: &str) -> Option<u32> {
    None
}

#[cfg(not(target_arch = "wasm32"))]
pub fn resolve_queue(_vm_id: &str, _name: &str) -> Option<u32> {
    None
}

#[cfg(not(target_arch = "wasm32"))]
pub fn enqueue(_queue_id: u32, _value: &[u8]) -> bool {
    false
}

#[cfg(not(target_arch = "wasm32"))]
pub fn dequeue(_queue_id: u32) -> Option<Vec<u8>> {
    None
}
