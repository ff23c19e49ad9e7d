//! `kfp-operator local`: the operator's world on a laptop, with no cluster.
//!
//! Starts a real etcd + kube-apiserver on loopback (`kfp-testenv`), serves the conversion and admission webhooks
//! from this process ([`webhooks`]) and installs the CRDs pointed at them, creates its default Provider
//! ([`DEFAULT_PROVIDER`], the stub, running each schedule at once and then every minute), applies a set of manifests (by default
//! `examples/local/`, copies of the acceptance fixtures) the way `kubectl apply` does (a refused object is printed
//! with the API server's message and the others still go in) and prints every resource with its synchronization
//! state. With `--once` it then exits and tears the control plane down (exit status 1 when anything was refused or
//! did not settle); otherwise it stays up and says how to point `kubectl` at it.
//!
//! With `--cluster` ([`run_on_cluster`], [`cluster`]) the same demo runs on real pods and real Argo Workflows.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use kfp_core::resources::v1beta1::{
    Conditions, Experiment, Pipeline, Provider, Run, RunConfiguration, RunSchedule,
};
use kfp_core::values::NamespacedName;
use kfp_testenv::{ManifestObject, TestEnv};
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::GroupVersionKind;
use kube::discovery::Scope;
use kube::{Client, ResourceExt};

use crate::compiler::local::{LocalCompiler, default_python_env};
use crate::config::{ExecutorKind, OperatorConfig};
use crate::executor::Completions;
use crate::executor::direct::{DirectExecutor, RegistryResolver};
use crate::operator::{Operator, Shutdown};
use crate::telemetry::Metrics;

pub mod cluster;
pub mod webhooks;

/// The field manager of everything `local` applies.
const FIELD_MANAGER: &str = "kfp-operator-local";

/// Why `kfp-operator local` failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LocalError {
    /// The embedded control plane could not start (its message says how to get kube-apiserver and etcd).
    #[error("the local control plane could not start: {0}")]
    ControlPlane(#[from] kfp_testenv::Error),
    /// The CRDs could not be rendered.
    #[error(transparent)]
    Crds(#[from] crate::crds::CrdError),
    /// `--manifests` names nothing, or nothing with objects.
    #[error("no manifests found at {0}: pass --manifests with YAML files or folders")]
    NoManifests(String),
    /// Applying an object failed.
    #[error("{what}: {source}")]
    Apply {
        /// The object, e.g. `Pipeline default/add-pipeline`.
        what: String,
        /// The API error.
        source: kube::Error,
    },
    /// A manifest is not a Kubernetes object.
    #[error("{what} has no usable apiVersion/kind: {reason}")]
    Manifest {
        /// The manifest.
        what: String,
        /// Why it cannot be applied.
        reason: String,
    },
    /// Not every resource settled in time (the table is printed anyway).
    #[error("not every resource reached a settled state within {0:?}")]
    NotSettled(Duration),
    /// `--cluster`: loading the images or installing the chart failed.
    #[error("{0}")]
    Cluster(String),
    /// The webhooks could not be served or registered.
    #[error("the local webhooks: {0}")]
    Webhooks(String),
    /// The API server refused some of the manifests (each was printed with its message).
    #[error("the API server refused {0} of the manifests (see above)")]
    Refused(usize),
    /// Listing objects failed.
    #[error("listing {kind} failed: {source}")]
    List {
        /// The kind.
        kind: &'static str,
        /// The API error.
        source: kube::Error,
    },
}

/// What `kfp-operator local` does.
#[derive(Debug, Clone)]
pub struct LocalOptions {
    /// YAML files or folders of them, applied in order.
    pub manifests: Vec<PathBuf>,
    /// Print the table and exit instead of staying up.
    pub once: bool,
    /// The repository's `compilers/` folder (for `kfpsdk/compile.sh`).
    pub compilers: PathBuf,
    /// The compilers' virtualenv (`scripts/python-env.sh`); `None`: [`default_python_env`].
    pub python_env: Option<PathBuf>,
}

impl LocalOptions {
    /// The manifests to apply: those given, else `examples/local` (or `examples/cluster` on the cluster).
    fn manifests_or(&self, default: &str) -> Vec<PathBuf> {
        if self.manifests.is_empty() {
            vec![PathBuf::from(default)]
        } else {
            self.manifests.clone()
        }
    }
}

/// The kfpsdk compiler `local` can use: `<compilers>/kfpsdk/compile.sh` with the virtualenv's python3, when both
/// exist; otherwise why not.
pub fn kfpsdk_compiler(options: &LocalOptions) -> Result<(PathBuf, PathBuf), String> {
    let venv = options
        .python_env
        .clone()
        .or_else(default_python_env)
        .ok_or_else(|| "no virtualenv (set KFP_OPERATOR_VENV or HOME)".to_string())?;
    let script = options.compilers.join("kfpsdk/compile.sh");
    if !venv.join("bin/python3").is_file() {
        return Err(format!(
            "no Python environment at {} (run scripts/python-env.sh)",
            venv.display()
        ));
    }
    if !script.is_file() {
        return Err(format!("no {} (pass --compilers)", script.display()));
    }
    Ok((script, venv))
}

/// How long `local` waits for every resource to settle before it shows the table anyway.
pub const SETTLE_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs `local`, writing progress and the resource table to standard output.
pub async fn run(options: &LocalOptions) -> Result<(), LocalError> {
    let manifests = options.manifests_or("examples/local");
    check_manifests(&manifests)?;
    let env = TestEnv::start().await?;
    println!(
        "control plane: kube-apiserver {} at {} (ready in {:.1?})",
        kfp_testenv::KUBERNETES_VERSION,
        env.server_url(),
        env.startup_time()
    );

    let client = env.client().await?;
    let objects = read(&manifests)?;
    let config = local_config();
    let (trigger, shutdown) = Shutdown::new();
    let url = webhooks::serve(&client, config.spec.conversion(), shutdown.clone()).await?;
    println!(
        "webhooks: conversion and admission at {url} (a CA made for this run); CRDs and webhook configuration point there"
    );
    let default_provider = apply_all(&client, &[default_provider()]).await?.join("");
    println!(
        "default provider: Provider {default_provider} (stub; v1alpha5 objects without a provider use it)"
    );

    let kfpsdk = kfpsdk_compiler(options);
    let controllers = tokio::spawn(run_operator(
        client.clone(),
        config,
        shutdown,
        kfpsdk.clone().ok(),
    ));
    println!(
        "operator: six controllers, direct executor, stub provider and its events, stub compiler for stub and tfx"
    );
    match &kfpsdk {
        Ok((script, venv)) => println!(
            "kfpsdk compiler: {} with the Python environment {}",
            script.display(),
            venv.display()
        ),
        Err(reason) => println!("kfpsdk compiler: not available: {reason}"),
    }

    let (settled, refused) = apply_and_follow(&client, &objects, SETTLE_TIMEOUT).await?;

    if !options.once {
        println!(
            "\nThe control plane and the operator stay up until Ctrl-C. From another shell:\n  export KUBECONFIG={}\n  kubectl get kfp -A",
            env.kubeconfig_path().display()
        );
        // Waiting for Ctrl-C cannot fail in a way worth reporting: either way everything is torn down on return.
        let _ = tokio::signal::ctrl_c().await;
    }
    trigger.trigger();
    let _ = controllers.await;
    if refused > 0 {
        Err(LocalError::Refused(refused))
    } else if settled {
        Ok(())
    } else {
        Err(LocalError::NotSettled(SETTLE_TIMEOUT))
    }
}

/// The Provider `local` creates before the manifests, unless they define it themselves:
/// `kfp-operator-system/stub`, the stub for every namespace, running each schedule when it is created and then every
/// 60 s, so that scheduled RunConfigurations and their dependants complete within seconds. v1alpha5 objects that
/// name no provider use it (the conversion's default provider in `local`).
pub const DEFAULT_PROVIDER: &str = r#"{
  "apiVersion": "pipelines.kubeflow.org/v1beta1",
  "kind": "Provider",
  "metadata": {"name": "stub", "namespace": "kfp-operator-system"},
  "spec": {
    "serviceImage": "kfp-operator/provider-service:latest",
    "serviceAccount": "default",
    "pipelineRootStorage": "/tmp/pipeline-root",
    "parameters": {"provider": "stub", "schedulePeriodSeconds": "60"},
    "frameworks": [
      {"name": "stub", "image": "kfp-operator/stub-compiler:latest"},
      {"name": "tfx", "image": "kfp-operator/tfx-compiler:latest"}
    ]
  }
}"#;

fn default_provider() -> ManifestObject {
    ManifestObject {
        path: PathBuf::from("(kfp-operator local)"),
        index: 0,
        // A constant known to parse (tested).
        value: serde_json::from_str(DEFAULT_PROVIDER).unwrap_or_default(),
    }
}

/// The operator's configuration in `local`: the direct executor with the stub provider type, and
/// [`DEFAULT_PROVIDER`] as the provider of v1alpha5 objects that name none.
fn local_config() -> OperatorConfig {
    let mut config = OperatorConfig::default();
    config.spec.executor = ExecutorKind::Direct;
    config.spec.direct.default_provider_type = kfp_providers::stub::TYPE_NAME.to_string();
    config.spec.default_provider = "kfp-operator-system/stub".to_string();
    if config.spec.workflow_namespace.is_empty() {
        config.spec.workflow_namespace = "kfp-operator-system".to_string();
    }
    config
}

/// How long `local --cluster` waits for every resource to settle: each operation is a Workflow with real pods.
pub const CLUSTER_SETTLE_TIMEOUT: Duration = Duration::from_secs(600);

/// `local --cluster`: loads images of this binary into `cluster` (started and entered by the caller, see
/// [`cluster::start_and_enter`]), installs the chart, applies the manifests (default `examples/cluster`) and
/// follows them as [`run`] does. Run from the repository root: it uses `scripts/images.sh` and `charts/`.
pub async fn run_on_cluster(
    options: &LocalOptions,
    cluster: &kfp_testenv::cluster::Cluster,
) -> Result<(), LocalError> {
    let manifests = options.manifests_or("examples/cluster");
    check_manifests(&manifests)?;
    let objects = read(&manifests)?;
    println!(
        "cluster: one node (kubelet, containerd), Argo workflow-controller; network namespace {}",
        cluster.netns()
    );
    let repository =
        std::env::current_dir().map_err(|e| LocalError::Cluster(format!("no working directory: {e}")))?;
    let binary =
        std::env::current_exe().map_err(|e| LocalError::Cluster(format!("cannot find this binary: {e}")))?;
    cluster::load_images(cluster, &repository, &binary).map_err(LocalError::Cluster)?;
    println!(
        "images: {} written from {} and imported",
        cluster::IMAGES.join(", "),
        binary.display()
    );
    let helm = cluster::helm().map_err(LocalError::Cluster)?;
    cluster::install_chart(cluster, &helm, &repository.join("charts/kfp-operator"))
        .map_err(LocalError::Cluster)?;
    println!(
        "operator: installed by charts/kfp-operator (release {} in {}), running as a pod; Argo executor",
        cluster::RELEASE,
        cluster::NAMESPACE
    );
    let client = cluster.client().await?;
    let (settled, refused) = apply_and_follow(&client, &objects, CLUSTER_SETTLE_TIMEOUT).await?;
    let kubectl = format!(
        "nsenter --net=/run/netns/{} kubectl --kubeconfig {}",
        cluster.netns(),
        cluster.kubeconfig_path().display()
    );
    if !options.once {
        println!(
            "\nThe cluster stays up until Ctrl-C. From another shell (as root):\n  {kubectl} get pods,workflows -A\n  {kubectl} get kfp -A"
        );
        // As in `run`: either way everything is torn down on return.
        let _ = tokio::signal::ctrl_c().await;
    }
    if refused > 0 {
        Err(LocalError::Refused(refused))
    } else if settled {
        Ok(())
    } else {
        Err(LocalError::NotSettled(CLUSTER_SETTLE_TIMEOUT))
    }
}

fn check_manifests(manifests: &[PathBuf]) -> Result<(), LocalError> {
    match manifests.iter().find(|path| !path.exists()) {
        Some(path) => Err(LocalError::NoManifests(path.display().to_string())),
        None => Ok(()),
    }
}

fn read(manifests: &[PathBuf]) -> Result<Vec<ManifestObject>, LocalError> {
    let objects = kfp_testenv::read_manifests(manifests)?;
    if objects.is_empty() {
        let paths: Vec<String> = manifests.iter().map(|p| p.display().to_string()).collect();
        return Err(LocalError::NoManifests(paths.join(", ")));
    }
    Ok(objects)
}

/// Applies `objects` as `kubectl apply` does (each refusal printed with the API server's message, the rest still
/// applied), prints each state change until everything settled (or `timeout`), then the table; whether everything
/// settled, and how many objects were refused.
async fn apply_and_follow(
    client: &Client,
    objects: &[ManifestObject],
    timeout: Duration,
) -> Result<(bool, usize), LocalError> {
    create_namespaces(client, objects).await?;
    let mut refused = 0;
    for object in install_order(objects) {
        let kind = object.value["kind"].as_str().unwrap_or("object");
        match apply(client, object).await {
            Ok(name) => println!("applied {kind} {name}"),
            Err(LocalError::Apply {
                source: kube::Error::Api(status),
                ..
            }) if (400..500).contains(&status.code) => {
                refused += 1;
                println!("refused {}: {}", object.describe(), status.message);
                println!("  (from {})", object.location());
            }
            Err(error) => return Err(error),
        }
    }
    println!();
    let settled = follow_states(client, timeout).await?;
    print!("\n{}", table(client).await?);
    if !settled {
        println!("\nnot every resource settled within {timeout:?}; the table shows where each one is");
    }
    if refused > 0 {
        println!(
            "\nthe API server refused {refused} of {} objects (above, with its reasons)",
            objects.len()
        );
    }
    Ok((settled, refused))
}

/// The operator as `local` runs it: the direct executor resolving every Provider to the stub provider (unless
/// annotated otherwise), the built-in stub compiler for the `stub` and `tfx` frameworks (as the Go operator's
/// local stack does), the real kfpsdk compiler when `kfpsdk` (its `compile.sh` and virtualenv) is given, and the
/// Providers' event sources run in-process, so the stub's events complete Runs and record RunConfigurations'
/// succeeded runs.
async fn run_operator(
    client: Client,
    config: OperatorConfig,
    shutdown: Shutdown,
    kfpsdk: Option<(PathBuf, PathBuf)>,
) {
    let registry = kfp_providers::default_registry();
    let metrics = Metrics::shared();
    let resolver = RegistryResolver::from_config(client.clone(), registry.clone(), &config.spec.direct);
    let mut compiler = LocalCompiler::from_config(&config.spec.direct).with_stub_for("tfx");
    if let Some((script, venv)) = kfpsdk {
        compiler = compiler.with_python_compiler("kfpsdk", script, &venv);
    }
    let completions = Completions::default();
    let executor = DirectExecutor::new(
        Arc::new(resolver),
        Arc::new(compiler),
        completions.clone(),
        metrics.clone(),
    );
    // Controllers and the Providers' event sources only: `local` serves its own webhooks (`webhooks`), and nothing
    // else needs a port.
    let operator = Operator::builder(client)
        .config(config)
        .registry(registry)
        .metrics(metrics)
        .executor(Arc::new(executor), Some(completions))
        .build();
    if let Err(error) = operator.run(shutdown).await {
        tracing::error!(%error, "the local operator stopped");
    }
}

/// The state shown for a RunConfiguration that waits a few seconds for its Pipeline to be created.
pub const PENDING_PIPELINE_ARRIVAL: &str = "Pending (until its Pipeline exists)";

/// The state shown for a scheduled RunConfiguration whose Provider runs schedules (the stub's
/// `schedulePeriodSeconds`, as [`DEFAULT_PROVIDER`]) while its first scheduled run has not completed: it does
/// within seconds, and its dependants start then.
pub const AWAITING_SCHEDULED_RUN: &str = "Succeeded (until its first scheduled run)";

/// A state is settled when the operator has nothing left to do for the resource until something changes.
pub fn settled(state: &str) -> bool {
    matches!(state, "Succeeded" | "Failed" | "Pending" | "Deleted")
}

/// How long every resource must stay settled, with nothing changing, before the table is shown: a settled
/// resource can still set off another (a Pipeline's first version makes a RunConfiguration with `onChange:
/// [pipeline]` swap its RunSchedules), which the operator does within a few hundred milliseconds.
const QUIET_PERIOD: Duration = Duration::from_secs(2);

/// Prints each resource's state changes until all are settled and stay so for [`QUIET_PERIOD`]; false when
/// `timeout` passed first.
async fn follow_states(client: &Client, timeout: Duration) -> Result<bool, LocalError> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last: BTreeMap<String, String> = BTreeMap::new();
    let mut quiet_since: Option<(tokio::time::Instant, Vec<Row>)> = None;
    loop {
        let rows = all_rows(client).await?;
        for [kind, name, state, version, _] in &rows {
            let key = format!("{kind} {name}");
            if last.get(&key) != Some(state) {
                let version = if version.is_empty() {
                    String::new()
                } else {
                    format!(" (version {version})")
                };
                let shown = if state.is_empty() { "-" } else { state.as_str() };
                println!("  {key}: {shown}{version}");
                last.insert(key, state.clone());
            }
        }
        if rows.iter().all(|[_, _, state, _, _]| settled(state)) {
            match &quiet_since {
                Some((since, seen)) if *seen == rows => {
                    if since.elapsed() >= QUIET_PERIOD {
                        return Ok(true);
                    }
                }
                _ => quiet_since = Some((tokio::time::Instant::now(), rows.clone())),
            }
        } else {
            quiet_since = None;
        }
        if tokio::time::Instant::now() >= deadline {
            return Ok(false);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Applies `objects` as `local` does (namespaces they name first, then in [`install_order`]; objects with only a
/// `generateName` created, the rest server-side applied); returns each object's `ns/name`, in that order. Tests and benchmarks that start the
/// operator on their own control plane use it to load the same manifests.
pub async fn apply_all(client: &Client, objects: &[ManifestObject]) -> Result<Vec<String>, LocalError> {
    create_namespaces(client, objects).await?;
    let mut names = Vec::with_capacity(objects.len());
    for object in install_order(objects) {
        names.push(apply(client, object).await?);
    }
    Ok(names)
}

/// `objects` in the order they are applied: Providers first (the admission webhook checks every other kind against
/// the Provider it names, as a chart installs Providers before what uses them), otherwise as given.
pub fn install_order(objects: &[ManifestObject]) -> Vec<&ManifestObject> {
    let mut ordered: Vec<&ManifestObject> = objects.iter().collect();
    ordered.sort_by_key(|o| o.value["kind"] != "Provider");
    ordered
}

/// Creates every namespace the manifests name (server-side apply: existing ones are left as they are).
async fn create_namespaces(client: &Client, objects: &[ManifestObject]) -> Result<(), LocalError> {
    let namespaces: BTreeSet<&str> = objects
        .iter()
        .filter_map(|o| o.value["metadata"]["namespace"].as_str())
        .collect();
    let api: Api<Namespace> = Api::all(client.clone());
    for name in namespaces {
        let namespace =
            serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
        api.patch(
            name,
            &PatchParams::apply(FIELD_MANAGER),
            &Patch::Apply(&namespace),
        )
        .await
        .map_err(|source| LocalError::Apply {
            what: format!("creating namespace {name}"),
            source,
        })?;
    }
    Ok(())
}

/// Server-side applies one object, or creates it when it only has a `generateName`; returns its `ns/name`.
async fn apply(client: &Client, object: &ManifestObject) -> Result<String, LocalError> {
    let what = format!("{} from {}", object.describe(), object.location());
    let manifest_error = |reason: String| LocalError::Manifest {
        what: what.clone(),
        reason,
    };
    let api_version = object.value["apiVersion"]
        .as_str()
        .ok_or_else(|| manifest_error("no apiVersion".into()))?;
    let kind = object.value["kind"]
        .as_str()
        .ok_or_else(|| manifest_error("no kind".into()))?;
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let gvk = GroupVersionKind::gvk(group, version, kind);
    let (resource, capabilities) = kube::discovery::pinned_kind(client, &gvk)
        .await
        .map_err(|source| LocalError::Apply {
            what: what.clone(),
            source,
        })?;
    let dynamic: DynamicObject =
        serde_json::from_value(object.value.clone()).map_err(|e| manifest_error(e.to_string()))?;
    let namespace = dynamic.namespace().unwrap_or_else(|| "default".to_string());
    let api: Api<DynamicObject> = match capabilities.scope {
        Scope::Namespaced => Api::namespaced_with(client.clone(), &namespace, &resource),
        Scope::Cluster => Api::all_with(client.clone(), &resource),
    };
    let stored = match dynamic.metadata.name.clone() {
        Some(name) => {
            api.patch(
                &name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&dynamic),
            )
            .await
        }
        None => api.create(&PostParams::default(), &dynamic).await,
    }
    .map_err(|source| LocalError::Apply {
        what: what.clone(),
        source,
    })?;
    Ok(format!("{namespace}/{}", stored.name_any()))
}

/// The Providers whose stub runs schedules (`schedulePeriodSeconds` set).
async fn scheduling_providers(client: &Client) -> Result<BTreeSet<NamespacedName>, LocalError> {
    let providers = Api::<Provider>::all(client.clone())
        .list(&ListParams::default())
        .await
        .map_err(|source| LocalError::List {
            kind: "Provider",
            source,
        })?;
    Ok(providers
        .items
        .iter()
        .filter(|p| kfp_providers::stub::runs_schedules(&p.spec.parameters))
        .map(|p| NamespacedName::new(p.namespace().unwrap_or_default(), p.name_any()))
        .collect())
}

/// One row of the table: kind, `ns/name`, state, version, provider.
pub type Row = [String; 5];

async fn rows<K>(
    client: &Client,
    kind: &'static str,
    columns: impl Fn(&K) -> (String, String, String),
) -> Result<Vec<Row>, LocalError>
where
    K: kube::Resource<DynamicType = ()> + Clone + std::fmt::Debug + serde::de::DeserializeOwned,
{
    let list = Api::<K>::all(client.clone())
        .list(&ListParams::default())
        .await
        .map_err(|source| LocalError::List { kind, source })?;
    Ok(list
        .items
        .iter()
        .map(|item| {
            let (state, version, provider) = columns(item);
            let name = format!("{}/{}", item.namespace().unwrap_or_default(), item.name_any());
            [kind.to_string(), name, state, version, provider]
        })
        .collect())
}

fn or_dash(s: String) -> String {
    if s.is_empty() { "-".to_string() } else { s }
}

/// Every resource of the six kinds with its state, as `kubectl get kfp -A` would show it.
pub async fn table(client: &Client) -> Result<String, LocalError> {
    let all = all_rows(client).await?;
    let header: Row = ["KIND", "NAMESPACE/NAME", "STATE", "VERSION", "PROVIDER"].map(String::from);
    let rows: Vec<Row> = all.into_iter().map(|row| row.map(or_dash)).collect();
    let widths: Vec<usize> = (0..5)
        .map(|i| {
            rows.iter()
                .chain([&header])
                .map(|r| r[i].len())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        let _ = writeln!(out, "{}", cells.join("  ").trim_end());
    }
    Ok(out)
}

/// One row per resource of the six kinds: kind, `ns/name`, state (empty before the first status), version,
/// provider.
pub async fn all_rows(client: &Client) -> Result<Vec<Row>, LocalError> {
    let mut all: Vec<Row> = Vec::new();
    all.extend(
        rows::<Provider>(client, "Provider", |p| {
            let state = p
                .status
                .as_ref()
                .map(|s| s.synchronization_state().to_string())
                .unwrap_or_default();
            (state, String::new(), String::new())
        })
        .await?,
    );
    macro_rules! generic_rows {
        ($kind:ty, $name:literal) => {
            all.extend(
                rows::<$kind>(client, $name, |r| match &r.status {
                    Some(s) => (
                        s.synchronization_state().to_string(),
                        s.version.clone(),
                        s.provider.name.to_string(),
                    ),
                    None => Default::default(),
                })
                .await?,
            )
        };
    }
    generic_rows!(Pipeline, "Pipeline");
    generic_rows!(Experiment, "Experiment");
    generic_rows!(RunSchedule, "RunSchedule");
    all.extend(
        rows::<Run>(client, "Run", |r| match &r.status {
            Some(s) => (
                s.synchronization_state().to_string(),
                s.status.version.clone(),
                s.status.provider.name.to_string(),
            ),
            None => Default::default(),
        })
        .await?,
    );
    let scheduling = scheduling_providers(client).await?;
    all.extend(
        rows::<RunConfiguration>(client, "RunConfiguration", |r| match &r.status {
            Some(s) => (
                if kfp_core::reconcile::run_configuration::awaits_pipeline_arrival(s) {
                    // Not settled: it goes on by itself within seconds (decision 0002).
                    PENDING_PIPELINE_ARRIVAL.to_string()
                } else if s.synchronization_state() == kfp_core::values::SynchronizationState::Succeeded
                    && !r.spec.triggers.schedules.is_empty()
                    && s.latest_runs.succeeded.is_empty()
                    && scheduling.contains(&s.provider)
                {
                    AWAITING_SCHEDULED_RUN.to_string()
                } else {
                    s.synchronization_state().to_string()
                },
                String::new(),
                s.provider.to_string(),
            ),
            None => Default::default(),
        })
        .await?,
    );

    Ok(all)
}
