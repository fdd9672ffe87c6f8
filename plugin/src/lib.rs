//! proxy-wasm glue (work in progress)
