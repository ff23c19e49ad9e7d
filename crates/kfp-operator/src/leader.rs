//! Leader election on a `coordination.k8s.io/v1` Lease (`system.leaderElection.*`), so that two replicas of the
//! operator never write at once.
//!
//! The Lease is read and written with plain get, create and replace; `metadata.resourceVersion` makes every write
//! conditional on the Lease not having changed since it was read (optimistic concurrency), so two candidates that
//! race for a free Lease cannot both win: the API server refuses the second write with 409 Conflict.
//!
//! ## Semantics
//! - **Acquire** ([`LeaderElector::acquire`]): a candidate polls every `renew_period` (plus up to 20% jitter);
//!   while the API server cannot be reached it backs off, doubling up to `lease_duration` (jittered). It
//!   takes the Lease when it does not exist, when `spec.holderIdentity` is empty (released), or when
//!   `spec.renewTime + spec.leaseDurationSeconds` has passed (the holder stopped renewing). Taking an existing
//!   Lease that another identity held, or that was released, increments `spec.leaseTransitions` and sets
//!   `spec.acquireTime`; creating it starts them at 0.
//! - **Renew** ([`LeaderElector::run`] / [`LeaderGuard`]): the leader writes `spec.renewTime` every
//!   `renew_period`; a failed renewal is retried every quarter period.
//! - **Losing**: the guard's [`watch`] channel turns `false`, for good, when another identity holds the Lease, or
//!   when renewals have failed for the *renew deadline*, `lease_duration - renew_period`, counted from the moment
//!   the last successful renewal was sent. A request still in flight at the deadline is abandoned.
//!   The deadline is shorter than the Lease duration on purpose: another replica may take over once
//!   `renewTime + leaseDuration` has passed, so the holder must have stopped writing before that moment. The
//!   margin (`renew_period`) covers the request latency and clock skew between the replicas, which compare
//!   `renewTime`, written by the leader's clock, with their own clocks. The caller must stop writing the moment
//!   the channel turns `false`: the operator stops its controllers and becomes a candidate again in the same
//!   process (`operator::run_as_leader`; docs/decisions/0016-backoff-during-outages.md), so an API server
//!   outage longer than the Lease costs no restart.
//! - **Release** ([`LeaderGuard::release`], on graceful shutdown): the channel turns `false`, renewal stops, and
//!   the Lease is written with no holder, so that another replica takes over at its next poll instead of waiting
//!   for the Lease to expire. Dropping the guard without releasing stops renewing, and the Lease expires.
//!
//! `identity` must be unique per replica (the pod name); two processes with one identity would both lead.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};
use kube::{Client, ResourceExt};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::config::LeaderElectionConfig;

/// The settings of one elector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseConfig {
    /// The Lease name (`system.leaderElection.id`).
    pub name: String,
    /// The Lease namespace.
    pub namespace: String,
    /// This replica's identity, unique per replica (the pod name).
    pub identity: String,
    /// How long the Lease is valid without renewal (stored in whole seconds, rounded up).
    pub lease_duration: Duration,
    /// How often the leader renews and candidates poll; below `lease_duration`.
    pub renew_period: Duration,
}

impl LeaseConfig {
    /// The settings of `system.leaderElection` for the replica `identity`; the Lease namespace is resolved with
    /// [`LeaderElectionConfig::lease_namespace`].
    pub fn from_config(config: &LeaderElectionConfig, pod_namespace: Option<&str>, identity: &str) -> Self {
        Self {
            name: config.id.clone(),
            namespace: config.lease_namespace(pod_namespace),
            identity: identity.to_string(),
            lease_duration: config.lease_duration,
            renew_period: config.renew_period,
        }
    }

    /// How long the leader keeps leading without a successful renewal: `lease_duration - renew_period`.
    pub fn renew_deadline(&self) -> Duration {
        self.lease_duration.saturating_sub(self.renew_period)
    }

    /// `lease_duration` in whole seconds, rounded up, at least 1.
    fn lease_seconds(&self) -> i32 {
        let millis = self.lease_duration.as_millis();
        i32::try_from(millis.div_ceil(1000)).unwrap_or(i32::MAX).max(1)
    }

    fn validate(&self) -> Result<(), LeaderError> {
        let reason = if self.name.is_empty() {
            "the Lease name is empty"
        } else if self.namespace.is_empty() {
            "the Lease namespace is empty"
        } else if self.identity.is_empty() {
            "the identity is empty"
        } else if self.renew_period.is_zero() || self.renew_period >= self.lease_duration {
            "the renew period must be above zero and below the lease duration"
        } else {
            return Ok(());
        };
        Err(LeaderError::Config {
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            reason: reason.to_string(),
        })
    }
}

/// Why leader election failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LeaderError {
    /// The settings cannot work (e.g. the renew period is not below the lease duration).
    #[error("invalid leader election settings for the Lease {namespace}/{name}: {reason}")]
    Config {
        /// The Lease namespace.
        namespace: String,
        /// The Lease name.
        name: String,
        /// Why the settings cannot work.
        reason: String,
    },
    /// An API call on the Lease failed.
    #[error("cannot {action} the Lease {namespace}/{name}: {source}")]
    Kube {
        /// What was being done (`read`, `create`, `update`).
        action: &'static str,
        /// The Lease namespace.
        namespace: String,
        /// The Lease name.
        name: String,
        /// The API error.
        #[source]
        source: Box<kube::Error>,
    },
    /// Another replica wrote the Lease at the same time.
    #[error(
        "the Lease {namespace}/{name} changed while it was being written; the next attempt reads it again"
    )]
    Conflict {
        /// The Lease namespace.
        namespace: String,
        /// The Lease name.
        name: String,
    },
}

impl LeaderError {
    /// Errors that retrying cannot fix: bad settings, or the API server refusing this identity (401/403).
    pub fn is_permanent(&self) -> bool {
        match self {
            LeaderError::Config { .. } => true,
            LeaderError::Kube { source, .. } => {
                matches!(source.as_ref(), kube::Error::Api(status) if status.is_forbidden() || status.code == 401)
            }
            LeaderError::Conflict { .. } => false,
        }
    }
}

/// Acquires and renews one Lease for one identity.
pub struct LeaderElector {
    api: Api<Lease>,
    config: LeaseConfig,
    /// When the last successful acquire or renew request was sent.
    last_renewed: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for LeaderElector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaderElector")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl LeaderElector {
    /// An elector for the Lease `config` names, using `client`.
    pub fn new(client: Client, config: LeaseConfig) -> Self {
        Self {
            api: Api::namespaced(client, &config.namespace),
            config,
            last_renewed: Mutex::new(None),
        }
    }

    /// Its settings.
    pub fn config(&self) -> &LeaseConfig {
        &self.config
    }

    /// Waits until this identity holds the Lease. Transient errors are logged (once per 30 s) and retried with
    /// jittered exponential backoff up to `lease_duration`; permanent ones ([`LeaderError::is_permanent`]) are
    /// returned.
    pub async fn acquire(&self) -> Result<(), LeaderError> {
        self.config.validate()?;
        let backoff = crate::retry::Backoff::new(
            self.config.renew_period,
            self.config.lease_duration.max(self.config.renew_period),
        );
        let mut failures = 0u32;
        loop {
            let attempt = self.try_acquire_or_renew().await;
            failures = if attempt.is_err() {
                failures.saturating_add(1)
            } else {
                0
            };
            match attempt {
                Ok(true) => {
                    tracing::info!(
                        lease = %self.lease_key(),
                        identity = %self.config.identity,
                        "acquired the leader election Lease"
                    );
                    return Ok(());
                }
                Ok(false) => {}
                Err(e) if e.is_permanent() => return Err(e),
                Err(e) => {
                    if let Some(suppressed) = crate::telemetry::failure_log().check("leader/acquire") {
                        tracing::warn!(
                            failure = "leader/acquire",
                            error = %e,
                            failures,
                            suppressed,
                            "leader election attempt failed; retrying with backoff"
                        );
                    }
                }
            }
            let wait = match failures {
                0 => jittered(self.config.renew_period),
                failures => backoff.delay(failures),
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// Acquires the Lease ([`acquire`](Self::acquire)), then keeps it ([`run`](Self::run)).
    pub async fn lead(self) -> Result<LeaderGuard, LeaderError> {
        self.acquire().await?;
        Ok(self.run())
    }

    /// Starts renewing the Lease in a task (on the current Tokio runtime). The guard's channel starts `true`
    /// when this identity holds the Lease from a recent [`acquire`](Self::acquire), else `false`.
    pub fn run(self) -> LeaderGuard {
        Arc::new(self).run_shared()
    }

    /// [`run`](Self::run) keeping the elector, so that it can [`acquire`](Self::acquire) the Lease again after
    /// the guard stopped leading.
    pub fn run_shared(self: Arc<Self>) -> LeaderGuard {
        let elector = self;
        let last = elector.last_renewed();
        let leading = last.is_some_and(|last| last.elapsed() < elector.config.renew_deadline());
        let (sender, receiver) = watch::channel(leading);
        let sender = Arc::new(sender);
        let (stop, stopped) = oneshot::channel();
        let task = last
            .filter(|_| leading)
            .map(|last| tokio::spawn(renew_loop(elector.clone(), sender.clone(), last, stopped)));
        LeaderGuard {
            elector,
            sender,
            receiver,
            stop: Some(stop),
            task,
        }
    }

    /// One attempt: renews the Lease if this identity holds it, takes it if it is free or expired. True when
    /// this identity holds the Lease afterwards.
    pub async fn try_acquire_or_renew(&self) -> Result<bool, LeaderError> {
        let sent = Instant::now();
        let now = Timestamp::now();
        let held = match self
            .api
            .get_opt(&self.config.name)
            .await
            .map_err(|e| self.kube("read", e))?
        {
            None => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.config.name.clone()),
                        namespace: Some(self.config.namespace.clone()),
                        ..ObjectMeta::default()
                    },
                    spec: Some(LeaseSpec {
                        holder_identity: Some(self.config.identity.clone()),
                        lease_duration_seconds: Some(self.config.lease_seconds()),
                        acquire_time: Some(MicroTime(now)),
                        renew_time: Some(MicroTime(now)),
                        lease_transitions: Some(0),
                        ..LeaseSpec::default()
                    }),
                };
                match self.api.create(&PostParams::default(), &lease).await {
                    Ok(_) => true,
                    // Another candidate created it first.
                    Err(kube::Error::Api(status)) if status.is_already_exists() => false,
                    Err(e) => return Err(self.kube("create", e)),
                }
            }
            Some(mut lease) => {
                let mut spec = lease.spec.take().unwrap_or_default();
                let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
                match holder {
                    Some(holder) if holder == self.config.identity => {}
                    Some(_) if !expired(&spec, now) => return Ok(false),
                    _ => {
                        spec.holder_identity = Some(self.config.identity.clone());
                        spec.acquire_time = Some(MicroTime(now));
                        spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0).saturating_add(1));
                    }
                }
                spec.renew_time = Some(MicroTime(now));
                spec.lease_duration_seconds = Some(self.config.lease_seconds());
                lease.spec = Some(spec);
                self.replace(&lease, "renew").await?;
                true
            }
        };
        if held {
            self.set_last_renewed(Some(sent));
        }
        Ok(held)
    }

    /// Gives the Lease up if this identity holds it: no holder, a 1 s duration, renewed now; another replica
    /// takes it at its next poll. Stop writing before calling this ([`LeaderGuard::release`] does).
    pub async fn release(&self) -> Result<(), LeaderError> {
        self.set_last_renewed(None);
        let Some(mut lease) = self
            .api
            .get_opt(&self.config.name)
            .await
            .map_err(|e| self.kube("read", e))?
        else {
            return Ok(());
        };
        let mut spec = lease.spec.take().unwrap_or_default();
        if spec.holder_identity.as_deref() != Some(self.config.identity.as_str()) {
            return Ok(());
        }
        let now = MicroTime(Timestamp::now());
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.acquire_time = Some(now.clone());
        spec.renew_time = Some(now);
        lease.spec = Some(spec);
        self.replace(&lease, "release").await?;
        tracing::info!(
            lease = %self.lease_key(),
            identity = %self.config.identity,
            "released the leader election Lease"
        );
        Ok(())
    }

    async fn replace(&self, lease: &Lease, action: &'static str) -> Result<(), LeaderError> {
        // `lease` carries the resourceVersion it was read at: the API server refuses the write if it changed.
        match self
            .api
            .replace(&lease.name_any(), &PostParams::default(), lease)
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.is_conflict() => Err(LeaderError::Conflict {
                namespace: self.config.namespace.clone(),
                name: self.config.name.clone(),
            }),
            Err(e) => Err(self.kube(action, e)),
        }
    }

    fn kube(&self, action: &'static str, source: kube::Error) -> LeaderError {
        LeaderError::Kube {
            action,
            namespace: self.config.namespace.clone(),
            name: self.config.name.clone(),
            source: Box::new(source),
        }
    }

    fn lease_key(&self) -> String {
        format!("{}/{}", self.config.namespace, self.config.name)
    }

    fn last_renewed(&self) -> Option<Instant> {
        self.last_renewed.lock().map(|last| *last).unwrap_or(None)
    }

    fn set_last_renewed(&self, value: Option<Instant>) {
        if let Ok(mut last) = self.last_renewed.lock() {
            *last = value;
        }
    }
}

/// Holds the leadership while it lives: renews the Lease in a task and tells through a channel whether this
/// replica leads. Dropping it stops renewing without releasing (the Lease expires); prefer
/// [`release`](Self::release) on graceful shutdown.
#[derive(Debug)]
pub struct LeaderGuard {
    elector: Arc<LeaderElector>,
    sender: Arc<watch::Sender<bool>>,
    receiver: watch::Receiver<bool>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl LeaderGuard {
    /// A channel that is `true` while this replica leads and turns `false` for good when it stops leading.
    pub fn leading(&self) -> watch::Receiver<bool> {
        self.receiver.clone()
    }

    /// Whether this replica leads now.
    pub fn is_leading(&self) -> bool {
        *self.receiver.borrow()
    }

    /// Stops leading (the channel turns `false` first), stops renewing, and releases the Lease.
    pub async fn release(mut self) -> Result<(), LeaderError> {
        self.sender.send_replace(false);
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            // The task ends at its next await point; an error here means it panicked, nothing to clean up.
            let _ = task.await;
        }
        self.elector.release().await
    }
}

impl Drop for LeaderGuard {
    fn drop(&mut self) {
        self.sender.send_replace(false);
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Renews until the Lease is lost or `stopped` fires; `last` is when the last successful renewal was sent.
async fn renew_loop(
    elector: Arc<LeaderElector>,
    sender: Arc<watch::Sender<bool>>,
    mut last: Instant,
    mut stopped: oneshot::Receiver<()>,
) {
    let config = &elector.config;
    let retry_interval = (config.renew_period / 4).max(Duration::from_millis(10));
    let mut next = last + config.renew_period;
    loop {
        let deadline = last + config.renew_deadline();
        tokio::select! {
            _ = &mut stopped => return,
            _ = tokio::time::sleep_until(next.min(deadline)) => {}
        }
        if Instant::now() >= deadline {
            break;
        }
        let sent = Instant::now();
        let attempt = tokio::select! {
            _ = &mut stopped => return,
            attempt = tokio::time::timeout_at(deadline, elector.try_acquire_or_renew()) => attempt,
        };
        match attempt {
            Ok(Ok(true)) => {
                last = sent;
                next = last + config.renew_period;
            }
            Ok(Ok(false)) => {
                sender.send_replace(false);
                tracing::warn!(
                    lease = %elector.lease_key(),
                    identity = %config.identity,
                    "another replica holds the leader election Lease; no longer leading"
                );
                return;
            }
            Ok(Err(e)) => {
                // At most four attempts per renew period until the renew deadline: bounded without a backoff.
                if let Some(suppressed) = crate::telemetry::failure_log().check("leader/renew") {
                    tracing::warn!(
                        failure = "leader/renew",
                        error = %e,
                        suppressed,
                        "renewing the leader election Lease failed; retrying"
                    );
                }
                next = Instant::now() + retry_interval;
            }
            Err(_) => break,
        }
    }
    sender.send_replace(false);
    tracing::error!(
        lease = %elector.lease_key(),
        identity = %config.identity,
        renew_deadline_ms = config.renew_deadline().as_millis() as u64,
        "could not renew the leader election Lease before the renew deadline; no longer leading"
    );
}

/// True when the Lease's holder has not renewed within its `leaseDurationSeconds`.
fn expired(spec: &LeaseSpec, now: Timestamp) -> bool {
    let Some(renewed) = spec.renew_time.as_ref().or(spec.acquire_time.as_ref()) else {
        return true;
    };
    let duration_ms = i64::from(spec.lease_duration_seconds.unwrap_or(0)) * 1000;
    renewed.0.as_millisecond().saturating_add(duration_ms) <= now.as_millisecond()
}

/// `period` plus up to 20%, so that candidates started together do not poll in lockstep.
fn jittered(period: Duration) -> Duration {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::from(d.subsec_nanos()))
        .unwrap_or_default();
    let mixed = nanos ^ COUNTER.fetch_add(0x9E37_79B9, Ordering::Relaxed);
    period + period.mul_f64((mixed % 200) as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> MicroTime {
        MicroTime(Timestamp::from_second(seconds).unwrap())
    }

    #[test]
    fn a_lease_expires_after_its_duration_since_renewal() {
        let spec = LeaseSpec {
            holder_identity: Some("a".into()),
            renew_time: Some(at(100)),
            lease_duration_seconds: Some(15),
            ..LeaseSpec::default()
        };
        assert!(!expired(&spec, at(114).0));
        assert!(expired(&spec, at(115).0));
        assert!(expired(&LeaseSpec::default(), at(0).0), "never renewed");
    }

    #[test]
    fn the_renew_deadline_leaves_a_renew_period_of_margin() {
        let config = LeaseConfig {
            name: "lock".into(),
            namespace: "ns".into(),
            identity: "a".into(),
            lease_duration: Duration::from_millis(2500),
            renew_period: Duration::from_millis(500),
        };
        assert_eq!(config.renew_deadline(), Duration::from_secs(2));
        assert_eq!(config.lease_seconds(), 3, "rounded up");
        assert!(config.validate().is_ok());
        let bad = LeaseConfig {
            renew_period: Duration::from_secs(3),
            ..config
        };
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains("below the lease duration")
        );
    }

    #[test]
    fn jitter_stays_within_twenty_percent() {
        for _ in 0..100 {
            let d = jittered(Duration::from_secs(1));
            assert!(
                d >= Duration::from_secs(1) && d < Duration::from_millis(1200),
                "{d:?}"
            );
        }
    }
}
