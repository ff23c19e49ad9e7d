//! `inhouse-operator`: the embedded controllers against the cluster of KUBECONFIG (or the in-cluster config),
//! until Ctrl-C. `WATCH_NAMESPACE` limits it to one namespace.

use std::process::ExitCode;
use std::sync::Arc;

use kfp_example_embedded::{InHousePlatform, config, registry, run};
use kfp_operator::operator::Shutdown;

#[tokio::main]
async fn main() -> ExitCode {
    let client = match kube::Client::try_default().await {
        Ok(client) => client,
        Err(e) => {
            eprintln!("error: no Kubernetes API server to talk to (in-cluster config or KUBECONFIG): {e}");
            return ExitCode::FAILURE;
        }
    };
    let registry = match registry(Arc::new(InHousePlatform::default())) {
        Ok(registry) => registry,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (trigger, shutdown) = Shutdown::new();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        trigger.trigger();
    });
    let namespace = std::env::var("WATCH_NAMESPACE").unwrap_or_default();
    match run(client, config(&namespace), registry, shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
