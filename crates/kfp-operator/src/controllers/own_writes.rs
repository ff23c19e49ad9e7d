//! The `resourceVersion` of this process's last write of each resource, so that a reconcile can tell whether the
//! watch cache's copy of its object is as fresh as a read from the API server would be.
//!
//! Reconciles plan on the object as it is now (`docs/decisions/0004-operator-shell.md`). What makes a
//! watch-cache copy dangerous is a copy older than our own last write: the planner would act again on a state it
//! already left (submit the same operation twice). A cached copy that carries exactly the `resourceVersion` of our
//! last write *is* that write, so nothing of ours is missing from it. A later change by someone else arrives as a
//! watch event of its own and is reconciled then; a write planned on the older copy carries its `resourceVersion`
//! and fails with a conflict. Everything else (an object this process never wrote, or a different version) is read
//! from the API server as before.
//!
//! In a steady flow (write, watch event, reconcile) this saves the read of every reconcile after the first.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kfp_core::executor::ResourceKind;

type Key = (ResourceKind, String, String);

/// How many earlier writes of one resource are remembered (a reconcile writes at most a few times).
const EARLIER: usize = 8;

/// How long a cached copy at our last write may be planned on again (issue 18: the reconcile woken by an
/// operation's end comes seconds after the one our write's event woke). Entries older than this go.
pub const REUSE: Duration = Duration::from_secs(60);

/// Our recent writes of one resource: the last, the ones it superseded, and when the last was made.
#[derive(Debug)]
struct Written {
    last: String,
    earlier: Vec<String>,
    at: Instant,
}

impl Default for Written {
    fn default() -> Self {
        Self {
            last: String::new(),
            earlier: Vec::new(),
            at: Instant::now(),
        }
    }
}

/// See the module documentation. One small entry per resource with a write of ours not reconciled yet.
#[derive(Debug, Default)]
pub struct OwnWrites {
    versions: Mutex<HashMap<Key, Written>>,
    pruned: Mutex<Option<Instant>>,
}

impl OwnWrites {
    /// Remembers the `resourceVersion` the API server answered our write of `namespace/name` with.
    pub fn record(&self, kind: ResourceKind, namespace: &str, name: &str, resource_version: Option<&str>) {
        let key = (kind, namespace.to_string(), name.to_string());
        let mut versions = self.lock();
        self.prune(&mut versions);
        match resource_version {
            Some(version) => {
                let written = versions.entry(key).or_default();
                written.at = Instant::now();
                let previous = std::mem::replace(&mut written.last, version.to_string());
                if !previous.is_empty() {
                    if written.earlier.len() >= EARLIER {
                        written.earlier.remove(0);
                    }
                    written.earlier.push(previous);
                }
            }
            None => {
                versions.remove(&key);
            }
        }
    }

    /// Whether `resource_version` (of a cached copy) is the version of our last write of `namespace/name`, made
    /// less than [`REUSE`] ago. Planning on it again is as safe as the first time (a copy someone else changed
    /// since is just as possible then, and every write carries the copy's resourceVersion); after [`REUSE`] the
    /// resource is read again (a resync), and the entry goes, so a settled resource costs nothing here.
    pub fn take_current(
        &self,
        kind: ResourceKind,
        namespace: &str,
        name: &str,
        resource_version: Option<&str>,
    ) -> bool {
        let Some(version) = resource_version else {
            return false;
        };
        let key = (kind, namespace.to_string(), name.to_string());
        let mut versions = self.lock();
        match versions.get(&key) {
            Some(w) if w.at.elapsed() >= REUSE => {
                versions.remove(&key);
                false
            }
            Some(w) => w.last == version,
            None => false,
        }
    }

    /// Drops entries older than [`REUSE`], at most every 10 s: the map holds only resources written lately.
    fn prune(&self, versions: &mut HashMap<Key, Written>) {
        let mut pruned = self
            .pruned
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if pruned.is_some_and(|at| at.elapsed() < Duration::from_secs(10)) {
            return;
        }
        *pruned = Some(Instant::now());
        versions.retain(|_, w| w.at.elapsed() < REUSE);
    }

    /// Whether `resource_version` (of a cached copy) is one of our writes that a later write of ours superseded:
    /// the copy is behind, and the watch event of our later write is on its way and will reconcile the resource,
    /// so this reconcile can be skipped without reading (issue 18: the finalizer patch's event arrives after the
    /// status write that followed it).
    pub fn superseded(
        &self,
        kind: ResourceKind,
        namespace: &str,
        name: &str,
        resource_version: Option<&str>,
    ) -> bool {
        let Some(version) = resource_version else {
            return false;
        };
        let key = (kind, namespace.to_string(), name.to_string());
        self.lock()
            .get(&key)
            .is_some_and(|w| w.earlier.iter().any(|v| v == version))
    }

    /// Forgets a resource that is gone (or about to be).
    pub fn forget(&self, kind: ResourceKind, namespace: &str, name: &str) {
        self.lock()
            .remove(&(kind, namespace.to_string(), name.to_string()));
    }

    /// How many resources are remembered.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Written>> {
        // A panic while holding the lock cannot leave the map half-updated (single insert/remove calls).
        self.versions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_version_of_our_last_write_is_current() {
        let writes = OwnWrites::default();
        let run = ResourceKind::Run;
        assert!(!writes.take_current(run, "ns", "r", Some("1")), "never written");
        writes.record(run, "ns", "r", Some("5"));
        assert!(
            !writes.take_current(run, "ns", "r", Some("4")),
            "older than our write"
        );
        assert!(
            !writes.take_current(run, "ns", "r", Some("6")),
            "written by someone after us"
        );
        assert!(!writes.take_current(run, "ns", "r", None));
        assert!(
            !writes.take_current(ResourceKind::Pipeline, "ns", "r", Some("5")),
            "another kind"
        );
        assert!(writes.take_current(run, "ns", "r", Some("5")));
        assert!(
            writes.take_current(run, "ns", "r", Some("5")),
            "again within the reuse window (an operation's end wakes it again)"
        );
        writes.forget(run, "ns", "r");
        assert!(writes.is_empty());
        writes.record(run, "ns", "r", Some("7"));
        writes.record(run, "ns", "r", Some("8"));
        assert!(
            !writes.take_current(run, "ns", "r", Some("7")),
            "only the last write counts"
        );
        assert!(writes.superseded(run, "ns", "r", Some("7")), "7 is behind our 8");
        assert!(!writes.superseded(run, "ns", "r", Some("8")), "8 is current");
        assert!(
            !writes.superseded(run, "ns", "r", Some("9")),
            "9 is someone else's"
        );
        writes.forget(run, "ns", "r");
        assert!(!writes.take_current(run, "ns", "r", Some("8")));
        assert!(writes.is_empty());
    }
}
