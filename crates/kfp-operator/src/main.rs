//! The `kfp-operator` binary: a thin command line over the `kfp_operator` library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "kfp-operator",
    version,
    about = "Kubernetes operator for ML pipelines (Kubeflow Pipelines, Vertex AI)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the CustomResourceDefinitions of all kinds as multi-document YAML, or write one file per kind.
    Crds {
        /// Write `<group>_<plural>.yaml` files into this folder instead of printing.
        #[arg(long)]
        out_dir: Option<PathBuf>,
    },
    /// Print the resource reference (Markdown generated from the CRDs, see docs/reference/), or write one page per
    /// kind and an index.
    Reference {
        /// Write `<kind>.md` files and `README.md` into this folder instead of printing.
        #[arg(long)]
        out_dir: Option<PathBuf>,
    },
    /// Run the operator: the six controllers with the configured executor, `/healthz`, `/readyz` and `/metrics`,
    /// leader election when enabled. Talks to the cluster of the in-cluster config or KUBECONFIG.
    Run {
        /// The configuration file (YAML, see docs/configuration.md); environment overrides `KFP_OPERATOR_*`.
        #[arg(long, env = "KFP_OPERATOR_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Start a local control plane (real etcd + kube-apiserver, no cluster needed), install the CRDs, apply
    /// manifests and show every resource's state.
    Local {
        /// YAML files or folders to apply (default: examples/local, with --cluster examples/cluster).
        #[arg(long)]
        manifests: Vec<PathBuf>,
        /// Run the demo on real pods instead: a one-node cluster (kubelet, containerd, the real Argo
        /// workflow-controller) in a network namespace of its own, the operator installed by its Helm chart from
        /// an image of this binary. Needs root and the node assets (scripts/local-cluster.sh does it all).
        #[arg(long)]
        cluster: bool,
        /// Print the resource table and exit instead of staying up until Ctrl-C.
        #[arg(long)]
        once: bool,
        /// The compilers folder: framework kfpsdk is compiled with `<compilers>/kfpsdk/compile.sh` when the Python
        /// environment exists.
        #[arg(long, default_value = "compilers")]
        compilers: PathBuf,
        /// The compilers' Python environment (scripts/python-env.sh); default ~/.cache/kfp-operator/venv.
        #[arg(long, env = "KFP_OPERATOR_VENV")]
        python_env: Option<PathBuf>,
    },
    /// Print the RunConfiguration dependency graph (pipelines, run configurations, standalone runs and run
    /// schedules, triggers, artifact edges) of the cluster (in-cluster config or KUBECONFIG) or of manifests, as
    /// Mermaid or Graphviz DOT. See docs/dependency-graph.md.
    Graph {
        /// Read these YAML files or folders instead of the cluster.
        #[arg(long)]
        manifests: Vec<PathBuf>,
        /// Only this namespace (references into others show as missing nodes); default: all namespaces.
        #[arg(long, short = 'n')]
        namespace: Option<String>,
        /// `mermaid` or `dot`.
        #[arg(long, default_value = "mermaid")]
        format: kfp_core::graph::Format,
    },
    /// Print the version the operator gives each Pipeline, Run, RunConfiguration, RunSchedule and Experiment of
    /// YAML or JSON files (any served apiVersion, lists included), one `KIND NAMESPACE/NAME VERSION` line each,
    /// to compare with the `status.version` a cluster holds. Providers have no version and are not listed.
    Version {
        /// The Go operator's hash algorithm: `head` (its main branch, what this operator writes) or `v0.7.0`.
        #[arg(long, default_value = "head")]
        algorithm: kfp_core::version::HashAlgorithm,
        /// YAML or JSON files, or folders of them.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Print the ValidatingWebhookConfiguration (the contract's names, paths and settings) as YAML: for the
    /// webhook Service in a namespace, or for a URL (out-of-cluster development). No kind needs a mutating webhook.
    WebhookConfigurations {
        /// The namespace of the webhook Service `kfp-operator-webhook-service` (port 443).
        #[arg(long, default_value = "kfp-operator-system")]
        namespace: String,
        /// The webhook Service's name.
        #[arg(long, default_value = "kfp-operator-webhook-service")]
        service_name: String,
        /// Point at this base URL (e.g. `https://192.168.1.10:9443`) instead of the Service.
        #[arg(long)]
        url: Option<String>,
        /// A PEM file with the CA that signed the serving certificate, written into `caBundle` (omit it when the
        /// operator's `self` certificate mode or cert-manager's CA injector fills it in).
        #[arg(long)]
        ca_bundle_file: Option<PathBuf>,
    },
    /// Serve a provider over the provider-service HTTP contract, configured from the environment
    /// (PROVIDERNAME, PARAMETERS_*, SERVER_PORT, METRICS_PORT, OPERATORWEBHOOK, ...; see docs/provider-service.md).
    ProviderService {
        /// The provider type: `stub` or `http`.
        #[arg(long, env = "PROVIDER_TYPE")]
        provider: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // `local --cluster`: every thread that talks to the cluster must be in its network namespace, so the cluster is
    // started and entered before the runtime starts its workers (they inherit the namespace). Dropped last: after
    // the runtime, it stops everything it started.
    let cluster = match &cli.command {
        Command::Local { cluster: true, .. } => match kfp_operator::local::cluster::start_and_enter() {
            Ok(cluster) => Some(cluster),
            Err(e) => {
                eprintln!("error: the local cluster could not start: {e}");
                return ExitCode::FAILURE;
            }
        },
        _ => None,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the Tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(cli, cluster.as_ref()))
}

async fn run(cli: Cli, cluster: Option<&kfp_testenv::cluster::Cluster>) -> ExitCode {
    let result: Result<(), Box<dyn std::error::Error>> = match cli.command {
        Command::Crds { out_dir: Some(dir) } => kfp_operator::crds::write_all(&dir).map_err(Into::into),
        Command::Crds { out_dir: None } => kfp_operator::crds::render()
            .map(|files| {
                for (_, yaml) in files {
                    print!("{yaml}");
                }
            })
            .map_err(Into::into),
        Command::Reference { out_dir: Some(dir) } => {
            kfp_operator::reference::write_all(&dir).map_err(Into::into)
        }
        Command::Reference { out_dir: None } => kfp_operator::reference::render()
            .map(|pages| {
                for (_, markdown) in pages {
                    println!("{markdown}");
                }
            })
            .map_err(Into::into),
        Command::Run { config } => kfp_operator::operator::run(
            kfp_operator::operator::RunOptions { config },
            kfp_providers::default_registry(),
        )
        .await
        .map_err(Into::into),
        Command::Local {
            manifests,
            once,
            compilers,
            python_env,
            cluster: _,
        } => {
            let options = kfp_operator::local::LocalOptions {
                manifests,
                once,
                compilers,
                python_env,
            };
            match cluster {
                Some(cluster) => kfp_operator::local::run_on_cluster(&options, cluster).await,
                None => kfp_operator::local::run(&options).await,
            }
            .map_err(Into::into)
        }
        Command::Graph {
            manifests,
            namespace,
            format,
        } => kfp_operator::graph::render(&kfp_operator::graph::GraphOptions {
            manifests,
            namespace,
            format,
        })
        .await
        .map(|graph| print!("{graph}"))
        .map_err(Into::into),
        Command::Version { algorithm, files } => {
            let config = kfp_operator::config::SpecConfig::default().conversion();
            kfp_operator::versions::compute(&files, algorithm, &config)
                .map(|versions| print!("{}", kfp_operator::versions::render(&versions)))
                .map_err(Into::into)
        }
        Command::WebhookConfigurations {
            namespace,
            service_name,
            url,
            ca_bundle_file,
        } => webhook_configurations(namespace, service_name, url, ca_bundle_file),
        Command::ProviderService { provider } => {
            // JSON lines on stderr like the operator's (without this the service logged nothing at all: found
            // by running it as a pod); `LOG_LEVEL` (error, warn, info, debug, trace; default info) or `RUST_LOG`.
            let level = std::env::var("LOG_LEVEL").unwrap_or_else(|_| "info".to_string());
            match kfp_operator::telemetry::init_logging(kfp_operator::telemetry::LogFormat::Json, &level) {
                Err(e) => Err(e.into()),
                Ok(()) => {
                    let registry = kfp_providers::default_registry();
                    kfp_providers::service::run_from_env(&registry, &provider)
                        .await
                        .map_err(Into::into)
                }
            }
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn webhook_configurations(
    namespace: String,
    service_name: String,
    url: Option<String>,
    ca_bundle_file: Option<PathBuf>,
) -> Result<(), Box<dyn std::error::Error>> {
    use kfp_operator::webhook::configuration::{Endpoint, SERVICE_PORT, render};
    let endpoint = match url {
        Some(url) => Endpoint::Url(url),
        None => Endpoint::Service {
            namespace,
            name: service_name,
            port: SERVICE_PORT,
        },
    };
    let ca = match ca_bundle_file {
        Some(path) => Some(
            std::fs::read(&path)
                .map_err(|e| format!("cannot read the CA bundle file {}: {e}", path.display()))?,
        ),
        None => None,
    };
    print!("{}", render(&endpoint, ca.as_deref())?);
    Ok(())
}
