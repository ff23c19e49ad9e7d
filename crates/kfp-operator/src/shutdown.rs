//! The shutdown signal: one trigger, any number of waiters (controllers, the webhook server, the feed). Its own
//! module so that what the operator starts can wait on it without depending on the operator's wiring.

use std::future::Future;

use tokio::sync::watch;

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
    /// A trigger and the shutdown it triggers.
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

    /// Whether shutdown was triggered.
    pub fn is_triggered(&self) -> bool {
        *self.receiver.borrow()
    }
}
