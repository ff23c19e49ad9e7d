//! `folder-provider-service`: the folder platform's provider served over the provider-service HTTP contract, the
//! way a provider author ships one (as the Provider resource's `spec.serviceImage`). Configured from the
//! environment like every provider service: `PROVIDERNAME`, `PARAMETERS_ROOT` (the platform folder),
//! `SERVER_PORT`, `METRICS_PORT`, `OPERATORWEBHOOK` (where run-completion events go).

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let mut registry = kfp_providers::default_registry();
    if let Err(e) = kfp_example_custom_provider::register(&mut registry) {
        eprintln!("error: {e}");
        return ExitCode::FAILURE;
    }
    match kfp_providers::service::run_from_env(&registry, kfp_example_custom_provider::TYPE_NAME).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
