//! Stage marks for `bench/wasm_stages.py`: where the wasm instructions of a
//! callback go, stage by stage, on the deterministic host of the tests.
//!
//! Built with the `stages` feature only (never into the filter users ship):
//! each [`mark`] calls the hook the plugin set, which logs the stage's name
//! through the host, and the host attributes the fuel burnt since the last
//! mark to it. Without the feature a mark is nothing and compiles away.

#[cfg(feature = "stages")]
static HOOK: std::sync::OnceLock<fn(&'static str)> = std::sync::OnceLock::new();

/// Sets the function each mark calls (the plugin's: a host log call).
#[cfg(feature = "stages")]
pub fn set_hook(f: fn(&'static str)) {
    let _ = HOOK.set(f);
}

/// The end of stage `name`.
#[inline(always)]
pub fn mark(name: &'static str) {
    #[cfg(feature = "stages")]
    if let Some(f) = HOOK.get() {
        f(name);
    }
    #[cfg(not(feature = "stages"))]
    let _ = name;
}
