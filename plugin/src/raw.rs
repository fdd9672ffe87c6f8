//! Host functions called directly, for the calls a host may legitimately
//! refuse mid-request (headers that have left, a stream that is gone, a
//! context that no longer exists): the SDK's `hostcalls` wrappers panic on
//! any status but the ones they expect, which would crash the VM. Each
//! returns whether the host answered OK.

use proxy_wasm::types::{BufferType, MapType};

const OK: u32 = 0;

#[cfg(target_arch = "wasm32")]
mod abi {
    #[link(wasm_import_module = "env")]
    extern "C" {
        pub fn proxy_replace_header_map_value(map: u32, k: *const u8, ks: usize, v: *const u8, vs: usize) -> u32;
        pub fn proxy_remove_header_map_value(map: u32, k: *const u8, ks: usize) -> u32;
        pub fn proxy_get_header_map_pairs(map: u32, data: *mut *mut u8, size: *mut usize) -> u32;
        pub fn proxy_set_buffer_bytes(kind: u32, start: usize, size: usize, v: *const u8, vs: usize) -> u32;
        pub fn proxy_continue_stream(stream: u32) -> u32;
        pub fn proxy_set_effective_context(context_id: u32) -> u32;
        #[allow(clippy::too_many_arguments)]
        pub fn proxy_send_local_response(
            status: u32,
            details: *const u8,
            details_size: usize,
            body: *const u8,
            body_size: usize,
            headers: *const u8,
            headers_size: usize,
            grpc_status: i32,
        ) -> u32;
    }
}

#[cfg(not(target_arch = "wasm32"))]
#[allow(clippy::missing_safety_doc)]
mod abi {
    // Native builds (clippy, unit tests) never call the host.
    pub unsafe fn proxy_replace_header_map_value(_: u32, _: *const u8, _: usize, _: *const u8, _: usize) -> u32 {
        1
    }
    pub unsafe fn proxy_remove_header_map_value(_: u32, _: *const u8, _: usize) -> u32 {
        1
    }
    pub unsafe fn proxy_get_header_map_pairs(_: u32, _: *mut *mut u8, _: *mut usize) -> u32 {
        1
    }
    pub unsafe fn proxy_set_buffer_bytes(_: u32, _: usize, _: usize, _: *const u8, _: usize) -> u32 {
        1
    }
    pub unsafe fn proxy_continue_stream(_: u32) -> u32 {
        1
    }
    pub unsafe fn proxy_set_effective_context(_: u32) -> u32 {
        1
    }
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn proxy_send_local_response(
        _: u32,
        _: *const u8,
        _: usize,
        _: *const u8,
        _: usize,
        _: *const u8,
        _: usize,
        _: i32,
    ) -> u32 {
        1
    }
}

pub fn replace_header(map: MapType, name: &str, value: &str) -> bool {
    // SAFETY: the host only reads both slices, during the call.
    OK == unsafe {
        abi::proxy_replace_header_map_value(map as u32, name.as_ptr(), name.len(), value.as_ptr(), value.len())
    }
}

pub fn remove_header(map: MapType, name: &str) -> bool {
    // SAFETY: as above.
    OK == unsafe { abi::proxy_remove_header_map_value(map as u32, name.as_ptr(), name.len()) }
}

/// A header map's serialized pairs (see `proxy_audit_core::exchange::header_map`),
/// or `None` if the host refuses (the map is gone) or has none.
pub fn header_pairs(map: MapType) -> Option<Vec<u8>> {
    let mut data: *mut u8 = std::ptr::null_mut();
    let mut size: usize = 0;
    // SAFETY: the host writes a pointer and size into our two locals.
    let status = unsafe { abi::proxy_get_header_map_pairs(map as u32, &mut data, &mut size) };
    if status != OK || data.is_null() || size == 0 {
        return None;
    }
    // SAFETY: the host allocated `size` bytes through this module's
    // `proxy_on_memory_allocate` (the SDK's, a `Vec<u8>` of that capacity)
    // and hands their ownership over, as the SDK's own `get_map` assumes.
    Some(unsafe { Vec::from_raw_parts(data, size, size) })
}

pub fn set_buffer(kind: BufferType, start: usize, size: usize, value: &[u8]) -> bool {
    // SAFETY: as above.
    OK == unsafe { abi::proxy_set_buffer_bytes(kind as u32, start, size, value.as_ptr(), value.len()) }
}

/// Resumes the request (`0`) or response (`1`) stream.
pub fn continue_stream(response: bool) -> bool {
    // SAFETY: plain integers.
    OK == unsafe { abi::proxy_continue_stream(u32::from(response)) }
}

pub fn set_effective_context(context_id: u32) -> bool {
    // SAFETY: a plain integer.
    OK == unsafe { abi::proxy_set_effective_context(context_id) }
}

pub fn send_local_response(status: u32, headers: &[(&str, &str)], body: &[u8]) -> bool {
    let pairs: Vec<(&str, &[u8])> = headers.iter().map(|(k, v)| (*k, v.as_bytes())).collect();
    let pairs = proxy_audit_core::exchange::header_map::serialize(&pairs);
    let details = b"proxy_audit";
    // SAFETY: the host only reads the slices, during the call.
    OK == unsafe {
        abi::proxy_send_local_response(
            status,
            details.as_ptr(),
            details.len(),
            body.as_ptr(),
            body.len(),
            pairs.as_ptr(),
            pairs.len(),
            -1,
        )
    }
}
