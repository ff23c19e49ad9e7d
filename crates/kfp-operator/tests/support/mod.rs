//! Shared pieces of the operator's integration tests: the control plane with our CRDs, an operator started
//! in-process on one namespace, a provider service on loopback, and a simulated Argo controller.
//!
//! The simulated Argo does what the WorkflowTemplates (docs/executors.md, "The templates") do, for real: it reads a
//! Workflow's arguments, makes the provider-service HTTP call the `curl` step makes (against a real provider service on
//! loopback, since cluster DNS names do not resolve here), and writes the phase and the
//! `provider-output`/`provider-status` outputs the way Argo records them. Compilation is the stub compiler's
//! (`{"foo": "bar"}`).

#![allow(dead_code)]

pub mod chaos;
pub mod chart;
pub mod nats;
pub mod outage;
pub mod owned;
pub mod process;
pub mod python;
pub mod webhook_server;

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kfp_core::provider::{Provider, ProviderConfig};
use kfp_core::resources::v1beta1::Conditions;
use kfp_core::values::{NamespacedName, SynchronizationState};
use kfp_operator::config::OperatorConfig;
use kfp_operator::controllers::Context;
use kfp_operator::health::Readiness;
use kfp_operator::operator::{Shutdown, ShutdownTrigger, run_controllers_and_sources};
use kfp_operator::telemetry::Metrics;
use kfp_providers::config::ServiceConfig;
use kfp_providers::service::ProviderServer;
use kfp_testenv::TestEnv;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::task::JoinHandle;

pub const WAIT: Duration = Duration::from_secs(30);

/// A control plane of the caller's own (not the shared one) with this project's CRDs and Argo's, and a client.
pub async fn dedicated_env() -> (TestEnv, Client) {
    let env = TestEnv::start().await.unwrap_or_else(|e| panic!("{e}"));
    env.install_crds(&[repo_root().join("config/crd")])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    env.install_argo_crds().await.unwrap_or_else(|e| panic!("{e}"));
    let client = env.client().await.unwrap();
    (env, client)
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The repository's acceptance fixtures (`fixtures/README.md`).
pub fn fixtures_dir() -> PathBuf {
    repo_root().join("fixtures")
}

/// The shared control plane with our CRDs and Argo's installed.
pub async fn env() -> &'static TestEnv {
    let env = TestEnv::shared().await.unwrap_or_else(|e| panic!("{e}"));
    env.install_crds(&[repo_root().join("config/crd")])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    env.install_argo_crds().await.unwrap_or_else(|e| panic!("{e}"));
    env
}

/// A fresh namespace and an admin client.
pub async fn client_and_namespace() -> (Client, String) {
    let env = env().await;
    let namespace = env.namespace().await.unwrap_or_else(|e| panic!("{e}"));
    let client = env.client().await.unwrap_or_else(|e| panic!("{e}"));
    (client, namespace.name().to_string())
}

/// An operator configuration watching only `namespace`, so tests sharing the control plane do not meet.
pub fn config_for(namespace: &str) -> OperatorConfig {
    let mut config = OperatorConfig::default();
    config.system.watch_namespace = namespace.to_string();
    config
}

/// The six controllers running in this process until [`RunningOperator::stop`].
pub struct RunningOperator {
    pub context: Arc<Context>,
    /// What the operator's `/readyz` would answer.
    pub readiness: Readiness,
    trigger: ShutdownTrigger,
    task: JoinHandle<()>,
}

impl RunningOperator {
    pub fn start(context: Arc<Context>) -> Self {
        Self::start_with_sources(context, None)
    }

    /// The controllers and, beside them, the Providers' event sources of direct mode.
    pub fn start_with_sources(
        context: Arc<Context>,
        sources: Option<kfp_operator::feed::sources::EventSources>,
    ) -> Self {
        let (trigger, shutdown) = Shutdown::new();
        let readiness = Readiness::new();
        let ctx = context.clone();
        let ready = readiness.clone();
        let task =
            tokio::spawn(async move { run_controllers_and_sources(ctx, sources, shutdown, &ready).await });
        Self {
            context,
            readiness,
            trigger,
            task,
        }
    }

    /// Stops the controllers and waits until they finished what they were doing.
    pub async fn stop(self) {
        self.trigger.trigger();
        tokio::time::timeout(WAIT, self.task)
            .await
            .expect("the controllers stop within the timeout")
            .expect("the controller task does not panic");
    }
}

/// A provider service serving `provider` on loopback; returns its base URL.
pub async fn serve_provider(name: &NamespacedName, provider: Arc<dyn Provider>) -> String {
    let mut config = ServiceConfig::new(ProviderConfig::new(name.clone()));
    config.server_host = IpAddr::V4(Ipv4Addr::LOCALHOST);
    config.server_port = 0;
    config.metrics_port = 0;
    let server = ProviderServer::bind(&config, provider, None).await.unwrap();
    let url = format!("http://{}", server.local_addr().unwrap());
    tokio::spawn(server.run(std::future::pending()));
    url
}

/// Waits until `name`'s `Synchronized` reason is `state` (and `extra` holds), returning the object.
pub async fn wait_for_state<K, S>(
    api: &Api<K>,
    name: &str,
    state: SynchronizationState,
    status: impl Fn(&K) -> Option<&S>,
) -> K
where
    K: Resource + Clone + std::fmt::Debug + DeserializeOwned,
    S: Conditions,
{
    wait_until(api, name, &format!("{name} to be {state:?}"), |k| {
        status(k).is_some_and(|s| s.synchronization_state() == state)
    })
    .await
}

/// Waits until `condition` holds for object `name`.
pub async fn wait_until<K>(api: &Api<K>, name: &str, what: &str, condition: impl Fn(&K) -> bool) -> K
where
    K: Resource + Clone + std::fmt::Debug + DeserializeOwned,
{
    let result = kfp_testenv::wait_for(what, WAIT, || async {
        let object = api.get_opt(name).await?;
        Ok::<_, kube::Error>(object.filter(|o| condition(o)))
    })
    .await;
    match result {
        Ok(object) => object,
        Err(error) => {
            let current = api.get_opt(name).await.ok().flatten();
            panic!("{error}\ncurrent object: {current:#?}")
        }
    }
}

/// Waits until object `name` is gone.
pub async fn wait_gone<K>(api: &Api<K>, name: &str)
where
    K: Resource + Clone + std::fmt::Debug + DeserializeOwned,
{
    kfp_testenv::wait_for(format!("{name} to be deleted"), WAIT, || async {
        let object = api.get_opt(name).await?;
        Ok::<_, kube::Error>(object.is_none().then_some(()))
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
}

/// A simulated Argo controller for the workflows in one namespace.
pub struct SimulatedArgo {
    task: JoinHandle<()>,
}

impl Drop for SimulatedArgo {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SimulatedArgo {
    /// Completes every new Workflow in `namespace` by calling the provider service at `provider_url`.
    pub fn start(client: Client, namespace: &str, provider_url: String) -> Self {
        Self::start_with(client, namespace, provider_url, 1, Default::default())
    }

    /// [`Self::start`] running up to `concurrency` workflows at once, as a real Argo controller does (the scale
    /// benchmark uses it so that the simulation is not what limits the operator), counting the workflows it
    /// completed (one status write each) in `completed`.
    pub fn start_with(
        client: Client,
        namespace: &str,
        provider_url: String,
        concurrency: usize,
        completed: Arc<std::sync::atomic::AtomicU64>,
    ) -> Self {
        let resource = kfp_operator::executor::argo::workflow_api_resource();
        let api: Api<DynamicObject> = Api::namespaced_with(client, namespace, &resource);
        let http = reqwest::Client::new();
        // Names run (or running): a watch may show a workflow again, also from before its status patch landed.
        let running = Arc::new(std::sync::Mutex::new(std::collections::HashSet::new()));
        let task = tokio::spawn(async move {
            watcher::watcher(api.clone(), watcher::Config::default())
                .applied_objects()
                .for_each_concurrent(concurrency, |event| {
                    let (api, http, url) = (&api, &http, &provider_url);
                    let (running, completed) = (running.clone(), completed.clone());
                    async move {
                        let Ok(workflow) = event else { return };
                        let phase = workflow.data.pointer("/status/phase").and_then(Value::as_str);
                        let name = workflow.name_any();
                        if phase.is_some() || !running.lock().unwrap().insert(name.clone()) {
                            return;
                        }
                        let status = run_workflow(http, url, &workflow).await;
                        let patch = json!({ "status": status });
                        if let Err(error) = api
                            .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                            .await
                        {
                            eprintln!("simulated argo: could not complete {name}: {error}");
                            running.lock().unwrap().remove(&name);
                        } else {
                            completed.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        }
                    }
                })
                .await;
        });
        Self { task }
    }
}

fn argument(workflow: &DynamicObject, name: &str) -> Option<String> {
    workflow
        .data
        .pointer("/spec/arguments/parameters")?
        .as_array()?
        .iter()
        .find(|p| p["name"] == name)
        .and_then(|p| p["value"].as_str())
        .map(str::to_string)
}

/// What Argo records after running the workflow's steps: the provider call's body and status code as outputs of
/// the workflow's root node, phase `Failed` only on HTTP 501 (the curl step's exit code).
async fn run_workflow(http: &reqwest::Client, provider_url: &str, workflow: &DynamicObject) -> Value {
    let template = workflow
        .data
        .pointer("/spec/workflowTemplateRef/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let kind = argument(workflow, "resource-kind").unwrap_or_default();
    let id = argument(workflow, "resource-id").unwrap_or_default();
    let definition: Value = argument(workflow, "resource-definition")
        .and_then(|d| serde_json::from_str(&d).ok())
        .unwrap_or(Value::Null);
    let body = if template.ends_with("compiled") {
        json!({ "pipelineDefinition": definition, "compiledPipeline": { "foo": "bar" } })
    } else {
        definition
    };
    let encoded = percent_encoding::utf8_percent_encode(&id, percent_encoding::NON_ALPHANUMERIC).to_string();
    let request = if template.starts_with("create") || template.ends_with("create-compiled") {
        http.post(format!("{provider_url}/resource/{kind}")).json(&body)
    } else if template.starts_with("update") || template.ends_with("update-compiled") {
        http.put(format!("{provider_url}/resource/{kind}/{encoded}"))
            .json(&body)
    } else {
        http.delete(format!("{provider_url}/resource/{kind}/{encoded}"))
    };
    let (code, output) = match request.send().await {
        Ok(response) => {
            let code = response.status().as_u16();
            (code, response.text().await.unwrap_or_default())
        }
        Err(error) => (0, format!("curl failed: {error}")),
    };
    let phase = if code == 501 { "Failed" } else { "Succeeded" };
    let name = workflow.name_any();
    json!({
        "phase": phase,
        "nodes": {
            name.clone(): {
                "id": name,
                "name": name,
                "displayName": name,
                "type": "Steps",
                "phase": phase,
                "outputs": { "parameters": [
                    { "name": "provider-output", "value": output },
                    { "name": "provider-status", "value": code.to_string() },
                ]}
            }
        }
    })
}

/// A Provider object named `name` in `namespace` allowing that namespace, with the `stub` framework.
pub fn provider_manifest(namespace: &str, name: &str) -> kfp_core::resources::v1beta1::Provider {
    let yaml = format!(
        "apiVersion: pipelines.kubeflow.org/v1beta1
kind: Provider
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  serviceImage: kfp-operator/provider-service:latest
  serviceAccount: default
  pipelineRootStorage: /tmp/pipeline-root
  frameworks:
  - {{name: stub, image: kfp-operator/stub-compiler:latest}}
  allowedNamespaces: [{namespace}]
"
    );
    serde_saphyr::from_str(&yaml).unwrap()
}

/// The shared metrics of a test operator.
pub fn metrics() -> Arc<Metrics> {
    Metrics::shared()
}

/// Which executor a test drives the operator with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// ArgoExecutor, with [`SimulatedArgo`] playing the Argo controller against a stub provider service.
    Argo,
    /// DirectExecutor calling the stub provider in-process, compiling with `compilers/stub/compile.sh`.
    Direct,
}

/// An operator on a fresh namespace with a Provider `stub` in it.
pub struct Harness {
    pub client: Client,
    pub namespace: String,
    pub provider: NamespacedName,
    pub operator: Option<RunningOperator>,
    pub argo: Option<SimulatedArgo>,
    pub mode: Mode,
    /// The configuration every operator of this harness starts with.
    pub config: OperatorConfig,
    /// The stub provider the operators (direct) or the provider service (Argo) call.
    stub: Arc<dyn Provider>,
    /// The provider service the simulated Argo calls (Argo mode).
    provider_url: Option<String>,
}

impl Harness {
    pub async fn start(mode: Mode) -> Self {
        Self::start_with(mode, |_| {}).await
    }

    pub async fn start_with(mode: Mode, configure: impl FnOnce(&mut OperatorConfig)) -> Self {
        let mut harness = Self::prepare(mode, configure).await;
        harness.start_argo();
        harness.start_operator();
        harness
    }

    /// The namespace, its Provider and (Argo mode) the provider service, with neither an operator nor the
    /// simulated Argo running: start them with [`Self::start_operator`] and [`Self::start_argo`].
    pub async fn prepare(mode: Mode, configure: impl FnOnce(&mut OperatorConfig)) -> Self {
        let (client, namespace) = client_and_namespace().await;
        let provider = NamespacedName::new(namespace.clone(), "stub".to_string());
        let providers: Api<kfp_core::resources::v1beta1::Provider> =
            Api::namespaced(client.clone(), &namespace);
        providers
            .create(&Default::default(), &provider_manifest(&namespace, "stub"))
            .await
            .unwrap();
        let mut config = config_for(&namespace);
        configure(&mut config);
        let stub: Arc<dyn Provider> = Arc::new(kfp_providers::stub::StubProvider::new());
        let provider_url = match mode {
            Mode::Argo => {
                config.spec.executor = kfp_operator::config::ExecutorKind::Argo;
                Some(serve_provider(&provider, stub.clone()).await)
            }
            Mode::Direct => {
                config.spec.executor = kfp_operator::config::ExecutorKind::Direct;
                None
            }
        };
        Self {
            client,
            namespace,
            provider,
            operator: None,
            argo: None,
            mode,
            config,
            stub,
            provider_url,
        }
    }

    /// A new operator context for this namespace (its own executor and metrics), not yet running.
    pub fn context(&self) -> Arc<Context> {
        match self.mode {
            Mode::Argo => executors::argo_context(self.client.clone(), self.config.clone()),
            Mode::Direct => executors::direct_context(
                self.client.clone(),
                self.config.clone(),
                &self.provider,
                self.stub.clone(),
            ),
        }
    }

    /// Starts a new operator on this namespace (a stopped one is replaced: a restart).
    pub fn start_operator(&mut self) {
        assert!(self.operator.is_none(), "an operator is already running");
        self.operator = Some(RunningOperator::start(self.context()));
    }

    /// Starts the simulated Argo controller (Argo mode; a no-op otherwise or when it runs already).
    pub fn start_argo(&mut self) {
        if let (None, Some(url)) = (&self.argo, &self.provider_url) {
            self.argo = Some(SimulatedArgo::start(
                self.client.clone(),
                &self.namespace,
                url.clone(),
            ));
        }
    }

    /// The running operator's metrics (OpenMetrics text).
    pub fn metrics_text(&self) -> String {
        self.operator
            .as_ref()
            .expect("an operator is running")
            .context
            .metrics
            .encode()
    }

    /// The running operator's count of successful reconciles by `controller` (`pipeline`, `run`, ...).
    pub fn reconciliations(&self, controller: &str) -> u64 {
        reconciliations(&self.metrics_text(), controller)
    }

    pub fn api<K>(&self) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// Creates an object from YAML (placeholders `$NS` and `$PROVIDER` substituted).
    pub async fn create<K>(&self, yaml: &str) -> K
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + std::fmt::Debug
            + serde::Serialize
            + DeserializeOwned,
    {
        let yaml = yaml
            .replace("$PROVIDER", &self.provider.to_string())
            .replace("$NS", &self.namespace);
        let object: K = serde_saphyr::from_str(&yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"));
        self.api::<K>()
            .create(&Default::default(), &object)
            .await
            .unwrap()
    }

    /// Event reasons and notes recorded on the object `name`, oldest first.
    pub async fn events_of(&self, name: &str) -> Vec<(String, String)> {
        let events: Api<k8s_openapi::api::events::v1::Event> = self.api();
        let mut list: Vec<_> = events
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
            .collect();
        list.sort_by_key(|e| e.event_time.as_ref().map(|t| t.0));
        list.into_iter()
            .map(|e| (e.reason.unwrap_or_default(), e.note.unwrap_or_default()))
            .collect()
    }

    /// Waits until the Events of `name` satisfy `done`, and returns them. An Event is recorded just after the status
    /// write it reports, so a test that saw the state must still wait for the Event.
    pub async fn wait_for_events(
        &self,
        name: &str,
        what: &str,
        done: impl Fn(&[(String, String)]) -> bool,
    ) -> Vec<(String, String)> {
        let last = std::sync::Mutex::new(Vec::new());
        kfp_testenv::wait_for(what, WAIT, || async {
            let events = self.events_of(name).await;
            let found = done(&events);
            *last.lock().unwrap() = events.clone();
            Ok::<_, String>(found.then_some(events))
        })
        .await
        .unwrap_or_else(|e| panic!("{e}; the Events of {name}: {:?}", last.lock().unwrap()))
    }

    /// Stops the operator (the control plane and the objects stay).
    pub async fn stop(&mut self) {
        if let Some(operator) = self.operator.take() {
            operator.stop().await;
        }
    }
}

/// The count of successful reconciles by `controller` in the OpenMetrics text `metrics`; 0 when absent.
pub fn reconciliations(metrics: &str, controller: &str) -> u64 {
    let prefix = "kfp_operator_reconciliations_total{";
    metrics
        .lines()
        .filter(|line| line.starts_with(prefix))
        .filter(|line| {
            line.contains(&format!("controller=\"{controller}\"")) && line.contains("result=\"success\"")
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// Builds the contexts of each executor.
pub mod executors {
    use super::*;
    use kfp_operator::executor::Completions;
    use kfp_operator::executor::direct::{DirectExecutor, StaticResolver};

    /// The Argo executor as the operator runs it: outcomes and wake-ups from one shared Workflow cache.
    pub fn argo_context(client: Client, config: OperatorConfig) -> Arc<Context> {
        let metrics = metrics();
        let (executor, completions) = kfp_operator::operator::executor_for(
            &config,
            &client,
            kfp_core::registry::ProviderRegistry::new(),
            &metrics,
        );
        Context::new(client, executor, completions, Arc::new(config), metrics)
    }

    /// The direct executor resolving Providers through the default registry (by annotation, else
    /// `config.spec.direct.defaultProviderType`), compiling with `compiler`.
    pub fn registry_context(
        client: Client,
        mut config: OperatorConfig,
        compiler: kfp_operator::compiler::local::LocalCompiler,
    ) -> Arc<Context> {
        config.spec.executor = kfp_operator::config::ExecutorKind::Direct;
        let resolver = kfp_operator::executor::direct::RegistryResolver::from_config(
            client.clone(),
            kfp_providers::default_registry(),
            &config.spec.direct,
        );
        direct_with(client, config, Arc::new(resolver), Arc::new(compiler))
    }

    pub fn direct_context(
        client: Client,
        config: OperatorConfig,
        provider_name: &NamespacedName,
        provider: Arc<dyn Provider>,
    ) -> Arc<Context> {
        let resolver = StaticResolver::new().with(provider_name.clone(), provider);
        let compiler = kfp_operator::compiler::local::LocalCompiler::new();
        direct_with(client, config, Arc::new(resolver), Arc::new(compiler))
    }

    /// A direct-executor context finding Providers with `resolver` and compiling with `compiler`.
    fn direct_with(
        client: Client,
        config: OperatorConfig,
        resolver: Arc<dyn kfp_operator::executor::direct::ProviderResolver>,
        compiler: Arc<dyn kfp_core::compiler::Compiler>,
    ) -> Arc<Context> {
        let metrics = metrics();
        let completions = Completions::default();
        let executor = DirectExecutor::new(resolver, compiler, completions.clone(), metrics.clone());
        Context::new(
            client,
            Arc::new(executor),
            Some(completions),
            Arc::new(config),
            metrics,
        )
    }
}
