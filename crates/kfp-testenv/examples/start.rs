//! Starts a test control plane and prints how long `TestEnv::start()` took and where its kubeconfig is.
//!
//! ```text
//! cargo run -p kfp-testenv --example start            # measure and stop
//! cargo run -p kfp-testenv --example start -- --hold  # keep it running for kubectl until Ctrl-C
//! ```

use std::time::Instant;

use kfp_testenv::TestEnv;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let hold = std::env::args().any(|arg| arg == "--hold");
    let started = Instant::now();
    let env = TestEnv::start().await?;
    let client = env.client().await?;
    let version = client.apiserver_version().await?;
    println!(
        "TestEnv::start() took {:.2?} (to the first answer of a new client: {:.2?}); kube-apiserver {}",
        env.startup_time(),
        started.elapsed(),
        version.git_version
    );
    println!("kubeconfig: {}", env.kubeconfig_path().display());
    if hold {
        println!(
            "running; try `kubectl --kubeconfig {} get ns`; Ctrl-C stops it",
            env.kubeconfig_path().display()
        );
        tokio::signal::ctrl_c().await?;
    }
    Ok(())
}
