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

/// The proxy-wasm header map encoding: pair count, then each name and value
/// size, then each name and value, NUL-terminated (all sizes u32 LE).
fn encode_pairs(pairs: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&(pairs.len() as u32).to_le_bytes());
    for (k, v) in pairs {
        out.extend_from_slice(&(k.len() as u32).to_le_bytes());
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
    }
    for (k, v) in pairs {
        out.extend_from_slice(k.as_bytes());
        out.push(0);
        out.extend_from_slice(v.as_bytes());
        out.push(0);
    }
    out
}

pub fn send_local_response(status: u32, headers: &[(&str, &str)], body: &[u8]) -> bool {
    let pairs = encode_pairs(headers);
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

#[cfg(test)]
mod tests {
    use super::encode_pairs;

    #[test]
    fn header_pairs_are_encoded_as_the_abi_says() {
        let b = encode_pairs(&[("a", "bc")]);
        assert_eq!(b, [1, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, b'a', 0, b'b', b'c', 0]);
    }
}
