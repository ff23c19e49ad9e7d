//! Wiring: the six controllers on one [`Context`], stopped together by a [`Shutdown`].
//!
//! Embedders build a [`Context`] with their own executor (and provider registry, for the direct executor) and call
//! [`run_controllers`]; the `kfp-operator run` command does the same with the configured executor.

use std::future::Future;
use std::sync::Arc;

use kfp_core::resources::v1beta1::{Experiment, Pipeline, RunSchedule};
use tokio::sync::watch;

use crate::controllers::{self, Context, generic};
use crate::health::Readiness;

/// A shutdown signal every controller can wait on. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Shutdown {
    receiver: watch::Receiver<bool>,
}

/// Triggers a [`Shutdown`].
#[derive(Debug)]
pub struct ShutdownTrigger {
    sender: watch::Sender<bool>,
}

impl ShutdownTrigger {
    /// Stops everything waiting on the paired [`Shutdown`]. Idempotent.
    pub fn trigger(&self) {
        self.sender.send_replace(true);
    }
}

impl Shutdown {
    pub fn new() -> (ShutdownTrigger, Shutdown) {
        let (sender, receiver) = watch::channel(false);
        (ShutdownTrigger { sender }, Shutdown { receiver })
    }

    /// Resolves once shutdown was triggered (or its trigger dropped).
    pub fn signalled(&self) -> impl Future<Output = ()> + Send + Sync + 'static {
        let mut receiver = self.receiver.clone();
        async move {
            // An error means the trigger is gone: nothing can keep us running.
            let _ = receiver.wait_for(|stop| *stop).await;
        }
    }

    pub fn is_triggered(&self) -> bool {
        *self.receiver.borrow()
    }
}

/// Runs all six controllers until `shutdown`, then returns once each finished its in-flight reconciles. Each
/// controller registers a readiness check in `readiness` that passes once its cache is filled.
pub async fn run_controllers(ctx: Arc<Context>, shutdown: Shutdown, readiness: &Readiness) {
    let concurrency = ctx.config.system.concurrency.clone();
    tracing::info!(executor = ?ctx.config.spec.executor, "starting controllers");
    let ready = |name: &str| readiness.register(&format!("{name} controller cache"));
    tokio::join!(
        generic::run_simple::<Pipeline>(
            ctx.clone(),
            concurrency.pipeline,
            shutdown.signalled(),
            ready("pipeline")
        ),
        generic::run_runs(ctx.clone(), concurrency.run, shutdown.signalled(), ready("run")),
        generic::run_simple::<RunSchedule>(
            ctx.clone(),
            concurrency.run_schedule,
            shutdown.signalled(),
            ready("runschedule")
        ),
        generic::run_simple::<Experiment>(
            ctx.clone(),
            concurrency.experiment,
            shutdown.signalled(),
            ready("experiment")
        ),
        controllers::run_configuration::run(
            ctx.clone(),
            concurrency.run_configuration,
            shutdown.signalled(),
            ready("runconfiguration")
        ),
        controllers::provider::run(
            ctx.clone(),
            concurrency.provider,
            shutdown.signalled(),
            ready("provider")
        ),
    );
    tracing::info!("controllers stopped");
}
