//! The safety net for `envoy.allow_on_headers_stop_iteration`, per VM.
//!
//! With the key on, an exchange holds headers while it reads a body it may
//! rewrite. That works only when Envoy's Wasm
//! `PluginConfig.allow_on_headers_stop_iteration` is set too; otherwise
//! Envoy never hands the body to a filter that holds the headers, and the
//! request would hang. Exchanges register their held headers here; the
//! root's tick ([`Holds::tick`]) releases any that saw no body within
//! [`GRACE_MS`] (without `content-length`, as with the key off), tells each
//! exchange at its next event that its headers left, and after
//! [`STALLS_TO_DISABLE`] stalls with no held request ever given its body,
//! turns the key off for the VM.

use super::{Effect, Side};

/// How long held headers may wait for their body's first callback.
pub const GRACE_MS: u64 = 1_000;
/// Stalls (with no proof that Envoy hands bodies over) before the key is off.
pub const STALLS_TO_DISABLE: u32 = 3;

/// Held headers of a VM's requests, by context id.
#[derive(Debug, Default)]
pub struct Holds {
    held: Vec<(u32, Side, u64)>,
    /// Released by a tick, not yet told to their exchange.
    released: Vec<(u32, Side)>,
    /// A held request got its body: Envoy honours the knob.
    proven: bool,
    stalls: u32,
}

/// What a tick asks of the host.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct HoldTick {
    /// Per context: the effects that release its headers (carried out with
    /// that context effective).
    pub release: Vec<(u32, Vec<Effect>)>,
    /// The error for Envoy's log, when something stalled.
    pub log: Option<String>,
    /// The key is to be turned off for this VM.
    pub disable: bool,
}

impl Holds {
    pub fn hold(&mut self, context_id: u32, side: Side, now_ms: u64) {
        if !self.held.iter().any(|(c, s, _)| *c == context_id && *s == side) {
            self.held.push((context_id, side, now_ms));
        }
    }

    /// A body callback came for `side`: its headers are no longer at risk.
    pub fn body_seen(&mut self, context_id: u32, side: Side) {
        let before = self.held.len();
        self.held.retain(|(c, s, _)| !(*c == context_id && *s == side));
        if self.held.len() < before {
            self.proven = true;
        }
    }

    /// The request ended (logged, or answered locally).
    pub fn forget(&mut self, context_id: u32) {
        self.held.retain(|(c, _, _)| *c != context_id);
        self.released.retain(|(c, _)| *c != context_id);
    }

    /// Whether a tick released `side`'s headers (asked once: the answer is
    /// consumed).
    pub fn take_released(&mut self, context_id: u32, side: Side) -> bool {
        let before = self.released.len();
        self.released.retain(|(c, s)| !(*c == context_id && *s == side));
        self.released.len() < before
    }

    /// How many requests hold headers now.
    pub fn len(&self) -> usize {
        self.held.len()
    }

    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    /// Releases what stalled past [`GRACE_MS`].
    pub fn tick(&mut self, now_ms: u64) -> HoldTick {
        let (stalled, keep): (Vec<_>, Vec<_>) =
            self.held.drain(..).partition(|(_, _, since)| now_ms.saturating_sub(*since) >= GRACE_MS);
        self.held = keep;
        if stalled.is_empty() {
            return HoldTick::default();
        }
        let release = stalled
            .iter()
            .map(|(c, side, _)| {
                self.released.push((*c, *side));
                // As without the key: a body that may change length travels without one.
                (*c, vec![Effect::RemoveHeader(*side, "content-length"), Effect::Resume(*side)])
            })
            .collect();
        let log = format!(
            "proxy-audit: envoy.allow_on_headers_stop_iteration is on, but {} request(s) held their headers {GRACE_MS} ms \
             without a body: set allow_on_headers_stop_iteration in the Wasm PluginConfig too, or turn the key off; \
             released without content-length",
            stalled.len()
        );
        let disable = !self.proven && {
            self.stalls = self.stalls.saturating_add(1);
            self.stalls >= STALLS_TO_DISABLE
        };
        HoldTick { release, log: Some(log), disable }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn released(t: &HoldTick) -> Vec<u32> {
        t.release.iter().map(|(c, _)| *c).collect()
    }

    #[test]
    fn held_headers_without_a_body_are_released_after_the_grace() {
        let mut h = Holds::default();
        h.hold(7, Side::Request, 1_000);
        h.hold(7, Side::Request, 1_500); // once per side
        h.hold(8, Side::Response, 1_800);
        assert_eq!(h.tick(1_999), HoldTick::default());
        let t = h.tick(2_000);
        assert_eq!(
            t.release,
            vec![(7, vec![Effect::RemoveHeader(Side::Request, "content-length"), Effect::Resume(Side::Request)])]
        );
        assert!(t.log.as_deref().is_some_and(|l| l.contains("1 request(s) held their headers 1000 ms")));
        assert!(!t.disable);
        assert_eq!(h.len(), 1);
        // The exchange learns it once; the other side and context never.
        assert!(!h.take_released(7, Side::Response));
        assert!(h.take_released(7, Side::Request));
        assert!(!h.take_released(7, Side::Request));
        assert_eq!(released(&h.tick(2_800)), vec![8]);
    }

    #[test]
    fn a_body_in_time_is_no_stall_and_proves_the_knob() {
        let mut h = Holds::default();
        h.hold(1, Side::Request, 0);
        h.body_seen(1, Side::Request);
        assert_eq!(h.tick(5_000), HoldTick::default());
        // Proven: later stalls are released and logged, never disable.
        for k in 0..5 {
            h.hold(10 + k, Side::Response, 10_000 * u64::from(k));
            let t = h.tick(10_000 * u64::from(k) + GRACE_MS);
            assert_eq!((released(&t), t.disable), (vec![10 + k], false));
        }
    }

    #[test]
    fn the_third_unproven_stall_turns_the_key_off() {
        let mut h = Holds::default();
        let mut disabled = Vec::new();
        for k in 0..STALLS_TO_DISABLE {
            h.hold(k, Side::Request, u64::from(k) * 2_000);
            disabled.push(h.tick(u64::from(k) * 2_000 + GRACE_MS).disable);
        }
        assert_eq!(disabled, vec![false, false, true]);
    }

    #[test]
    fn a_finished_request_is_forgotten() {
        let mut h = Holds::default();
        h.hold(3, Side::Request, 0);
        h.hold(3, Side::Response, 0);
        h.forget(3);
        assert!(h.is_empty());
        assert_eq!(h.tick(GRACE_MS), HoldTick::default());
    }
}
