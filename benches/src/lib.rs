//! Benches for flexsc live in `benches/`; this library holds what they share.
#![deny(unsafe_op_in_unsafe_fn, missing_docs)]

/// Finds posted work the naive way: look at every page's pending bits. The baseline the
/// doorbell is measured against.
pub fn sweep(shared: &flexsc_shim::Shared) -> u64 {
    shared.pages().map(|p| p.pending_bits()).fold(0, |a, b| a | b)
}

pub mod latency;
