//! How the operator retries against the API server: jittered exponential backoff, and the per-object failure
//! counts the controllers back off with (docs/reliability.md, docs/decisions/0016-backoff-during-outages.md).
//!
//! Watch streams back off with kube-runtime's `default_backoff` (0.8 s doubling to 30 s, jittered); what is
//! not a watch (a failed reconcile, a Lease poll, a certificate pass) uses a [`Backoff`] here, so that during an
//! API server outage every loop slows down to a few attempts per minute instead of retrying at a fixed pace.

use std::collections::HashMap;
use std::sync::Mutex;

pub use kfp_core::backoff::{Backoff, jitter};

/// Consecutive reconcile failures per object, so that the controllers' error policy backs off per object and a
/// success starts it over. Keys are the controller and the object's namespace/name; an entry lives only while
/// the object keeps failing.
#[derive(Debug, Default)]
pub struct Failures {
    counts: Mutex<HashMap<String, u32>>,
}

impl Failures {
    /// Counts one more failure of `key`; returns the count.
    pub fn fail(&self, key: &str) -> u32 {
        let mut counts = self
            .counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let count = counts.entry(key.to_string()).or_insert(0);
        *count = count.saturating_add(1);
        *count
    }

    /// Forgets the failures of `key` (it succeeded).
    pub fn succeed(&self, key: &str) {
        self.counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(key);
    }

    /// The key of one object of one controller.
    pub fn key(controller: &str, namespace: &str, name: &str) -> String {
        format!("{controller}/{namespace}/{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_count_per_key_until_a_success() {
        let failures = Failures::default();
        let a = Failures::key("pipeline", "ns", "a");
        assert_eq!(failures.fail(&a), 1);
        assert_eq!(failures.fail(&a), 2);
        assert_eq!(
            failures.fail(&Failures::key("run", "ns", "a")),
            1,
            "per controller"
        );
        failures.succeed(&a);
        assert_eq!(failures.fail(&a), 1, "a success starts over");
    }
}
