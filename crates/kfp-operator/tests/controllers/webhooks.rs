//! The conversion and admission webhooks, called by the real kube-apiserver over TLS.
//!
//! This test binary has its own control plane: its CRDs convert through a webhook server that runs in this
//! process (its own thread and runtime, shared by every test) at `https://127.0.0.1:<port>`, trusted through a
//! test CA in `caBundle`, and the ValidatingWebhookConfiguration of `kfp_operator::webhook::configuration` points
//! there too. Tests then work as users do: v1alpha5 manifests from the user documentation applied with
//! server-side apply, stored as v1beta1, read back in every version and reconciled by an in-process operator;
//! invalid manifests refused by the API server with the webhook's (or the CRD's CEL) message; malformed reviews
//! posted straight to the server.

use crate::support;

use std::path::PathBuf;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Namespace;
use kfp_core::conversion::{ConversionConfig, convert};
use kfp_core::resources::v1beta1::{Experiment, Pipeline, Provider, Run, RunConfiguration, RunSchedule};
use kfp_core::values::{NamespacedName, SynchronizationState};
use kfp_testenv::TestEnv;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::GroupVersionKind;
use kube::{Client, ResourceExt};
use serde_json::{Value, json};
use support::webhook_server::WebhookServer;
use tokio::sync::OnceCell;

/// Where the Providers of these tests live; v1alpha5 objects name a bare provider, and the conversion puts it in
/// the namespace of the configured default provider.
const PROVIDER_NS: &str = "kfp-webhook-providers";
const HUB: &str = "pipelines.kubeflow.org/v1beta1";
const A6: &str = "pipelines.kubeflow.org/v1alpha6";
const A5: &str = "pipelines.kubeflow.org/v1alpha5";
const MANAGER: &str = "kubectl";

/// The webhook server of this module and how the API server reaches it.
static WEBHOOKS: OnceCell<WebhookServer> = OnceCell::const_new();

/// This module's control plane: its CRDs convert through [`WEBHOOKS`], which no other module's tests expect.
static ENV: OnceCell<TestEnv> = OnceCell::const_new();

async fn own_env() -> &'static TestEnv {
    ENV.get_or_init(|| async { TestEnv::start().await.unwrap_or_else(|e| panic!("{e}")) })
        .await
}

fn conversion_config() -> ConversionConfig {
    ConversionConfig {
        workflow_namespace: "kfp-operator-system".into(),
        default_tfx_image: "kfp-operator/tfx-compiler:test".into(),
        default_provider: NamespacedName::new(PROVIDER_NS, "stub"),
        default_framework: "tfx".into(),
    }
}

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v1alpha5")
}

/// The control plane with CRDs converting through this binary's webhook server, the ValidatingWebhookConfiguration
/// pointing at it, and the Providers `stub` (frameworks tfx and stub, any namespace) and `restricted` (only
/// namespace `elsewhere`) in [`PROVIDER_NS`].
async fn webhooks() -> &'static WebhookServer {
    WEBHOOKS
        .get_or_init(|| async {
            let env = own_env().await;
            let server =
                support::webhook_server::serve_webhooks(env, conversion_config(), "kfp-webhook-tests").await;
            let client = env.client().await.unwrap();
            let apply = PatchParams::apply("kfp-webhook-tests").force();

            let namespaces: Api<Namespace> = Api::all(client.clone());
            let namespace: Namespace =
                serde_json::from_value(json!({"metadata": {"name": PROVIDER_NS}})).unwrap();
            namespaces
                .patch(PROVIDER_NS, &apply, &Patch::Apply(&namespace))
                .await
                .unwrap();
            let providers: Api<Provider> = Api::namespaced(client.clone(), PROVIDER_NS);
            let mut stub = support::provider_manifest(PROVIDER_NS, "stub");
            stub.spec.allowed_namespaces.clear();
            stub.spec
                .frameworks
                .push(kfp_core::resources::v1beta1::Framework {
                    name: "tfx".into(),
                    image: "kfp-operator/tfx-compiler:test".into(),
                    patches: Vec::new(),
                });
            let mut restricted = support::provider_manifest(PROVIDER_NS, "restricted");
            restricted.spec.allowed_namespaces = vec!["elsewhere".into()];
            for provider in [stub, restricted] {
                wait_accepted(&providers, provider).await;
            }

            // The API server picks new webhook settings up a moment later: wait until a v1alpha5 object converts
            // and an invalid one is refused by the webhook (both dry runs).
            let probe = env.namespace().await.unwrap();
            let experiments = dynamic(&client, probe.name(), A5, "Experiment");
            let dry_run = PostParams {
                dry_run: true,
                ..PostParams::default()
            };
            kfp_testenv::wait_for("the conversion webhook to be called", support::WAIT, || async {
                let object = dynamic_object(json!({"apiVersion": A5, "kind": "Experiment",
                    "metadata": {"name": "probe", "annotations": {"pipelines.kubeflow.org/provider": "stub"}},
                    "spec": {"description": "probe"}}));
                Ok::<_, kube::Error>(experiments.create(&dry_run, &object).await.ok().map(|_| ()))
            })
            .await
            .unwrap();
            let hub = dynamic(&client, probe.name(), HUB, "Experiment");
            kfp_testenv::wait_for("the admission webhook to be called", support::WAIT, || async {
                let object = dynamic_object(json!({"apiVersion": HUB, "kind": "Experiment",
                    "metadata": {"name": "probe"}, "spec": {"provider": "nowhere/nothing"}}));
                Ok::<_, kube::Error>(match hub.create(&dry_run, &object).await {
                    Err(kube::Error::Api(status)) if status.message.contains("admission webhook") => Some(()),
                    _ => None,
                })
            })
            .await
            .unwrap();
            server
        })
        .await
}

/// Creates `object` (the admission webhook may still be starting up, which refuses everything).
async fn wait_accepted<K>(api: &Api<K>, object: K)
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::Serialize + serde::de::DeserializeOwned,
{
    let name = object.meta().name.clone().unwrap_or_default();
    kfp_testenv::wait_for(format!("{name} to be created"), support::WAIT, || async {
        match api
            .patch(
                &name,
                &PatchParams::apply("kfp-webhook-tests").force(),
                &Patch::Apply(&object),
            )
            .await
        {
            Ok(_) => Ok(Some(())),
            Err(kube::Error::Api(status)) => Err(status.message),
            Err(e) => Err(e.to_string()),
        }
    })
    .await
    .unwrap();
}

async fn client_and_namespace() -> (Client, String) {
    webhooks().await;
    let env = own_env().await;
    let namespace = env.namespace().await.unwrap();
    (env.client().await.unwrap(), namespace.name().to_string())
}

fn dynamic(client: &Client, namespace: &str, api_version: &str, kind: &str) -> Api<DynamicObject> {
    let (group, version) = api_version.split_once('/').unwrap();
    let gvk = GroupVersionKind::gvk(group, version, kind);
    let resource = ApiResource::from_gvk_with_plural(&gvk, &format!("{}s", kind.to_ascii_lowercase()));
    Api::namespaced_with(client.clone(), namespace, &resource)
}

/// A JSON merge patch of object `name`, as `kubectl patch --type merge`.
async fn merge(api: &Api<DynamicObject>, name: &str, patch: Value) -> Result<DynamicObject, kube::Error> {
    api.patch(name, &PatchParams::default(), &Patch::Merge(patch))
        .await
}

fn dynamic_object(value: Value) -> DynamicObject {
    serde_json::from_value(value).unwrap()
}

fn api_version_and_kind(object: &Value) -> (String, String) {
    (
        object["apiVersion"].as_str().unwrap().to_string(),
        object["kind"].as_str().unwrap().to_string(),
    )
}

/// Creates `object` in `namespace`, expecting a refusal with an HTTP status in `codes`; returns the message.
async fn refused_with(
    client: &Client,
    namespace: &str,
    object: Value,
    codes: std::ops::Range<u16>,
) -> String {
    let (api_version, kind) = api_version_and_kind(&object);
    let api = dynamic(client, namespace, &api_version, &kind);
    match api.create(&PostParams::default(), &dynamic_object(object)).await {
        Ok(created) => panic!("the API server accepted an invalid object: {created:?}"),
        Err(kube::Error::Api(status)) => {
            assert!(codes.contains(&status.code), "{status:?}");
            status.message
        }
        Err(other) => panic!("unexpected error: {other}"),
    }
}

/// A refusal by validation or admission: a 4xx answer.
async fn refused(client: &Client, namespace: &str, object: Value) -> String {
    refused_with(client, namespace, object, 400..500).await
}

async fn created(client: &Client, namespace: &str, object: Value) -> DynamicObject {
    let (api_version, kind) = api_version_and_kind(&object);
    let api = dynamic(client, namespace, &api_version, &kind);
    api.create(&PostParams::default(), &dynamic_object(object))
        .await
        .unwrap_or_else(|e| panic!("creating failed: {e}"))
}

fn v1alpha5_fixture(file: &str) -> Vec<Value> {
    let path = fixtures().join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    kfp_testenv::parse_yaml(&text, &path)
        .unwrap()
        .into_iter()
        .map(|o| o.value)
        .collect()
}

/// Applies (named objects, server-side apply as `kubectl apply --server-side`) or creates (generateName objects, as
/// `kubectl create`) each manifest; returns each with the name it got.
async fn apply_manifests(client: &Client, namespace: &str, manifests: Vec<Value>) -> Vec<Value> {
    let mut applied = Vec::new();
    for mut manifest in manifests {
        let (api_version, kind) = api_version_and_kind(&manifest);
        let api = dynamic(client, namespace, &api_version, &kind);
        let object = if manifest.pointer("/metadata/name").is_some() {
            let name = manifest["metadata"]["name"].as_str().unwrap().to_string();
            api.patch(&name, &PatchParams::apply(MANAGER), &Patch::Apply(&manifest))
                .await
                .unwrap_or_else(|e| panic!("applying {kind} {name} failed: {e}"))
        } else {
            api.create(&PostParams::default(), &dynamic_object(manifest.clone()))
                .await
                .unwrap_or_else(|e| panic!("creating {kind} failed: {e}"))
        };
        manifest["metadata"]["name"] = json!(object.name_any());
        manifest["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("generateName");
        applied.push(manifest);
    }
    applied
}

/// `spec` and annotations: what a manifest says and a read must give back.
fn user_fields(object: &Value) -> Value {
    json!({"spec": object["spec"], "annotations": object["metadata"]["annotations"]})
}

async fn read_as(client: &Client, namespace: &str, api_version: &str, manifest: &Value) -> Value {
    let (_, kind) = api_version_and_kind(manifest);
    let name = manifest["metadata"]["name"].as_str().unwrap();
    let object = dynamic(client, namespace, api_version, &kind)
        .get(name)
        .await
        .unwrap_or_else(|e| panic!("reading {kind} {name} as {api_version} failed: {e}"));
    serde_json::to_value(object).unwrap()
}

// ---------------------------------------------------------------------------------------------------------------
// Conversion
// ---------------------------------------------------------------------------------------------------------------

/// Issue 7: a v1alpha5 manifest from the user documentation applies unchanged, is stored as v1beta1, and reads back
/// as v1alpha5 and v1alpha6 unchanged.
#[tokio::test]
async fn v1alpha5_manifests_from_the_user_docs_round_trip_through_the_api_server() {
    let (client, ns) = client_and_namespace().await;
    let mut manifests = Vec::new();
    for file in [
        "pipeline.yaml",
        "experiment.yaml",
        "runconfiguration.yaml",
        "runconfiguration-map-parameters.yaml",
        "run.yaml",
        "runschedule.yaml",
    ] {
        manifests.extend(v1alpha5_fixture(file));
    }
    let applied = apply_manifests(&client, &ns, manifests).await;
    let config = conversion_config();
    for manifest in &applied {
        let what = format!(
            "{} {}",
            manifest["kind"].as_str().unwrap(),
            manifest["metadata"]["name"]
        );
        let as_a5 = read_as(&client, &ns, A5, manifest).await;
        assert_eq!(
            user_fields(&as_a5),
            user_fields(manifest),
            "{what} reads back as v1alpha5 unchanged"
        );
        let as_a6 = read_as(&client, &ns, A6, manifest).await;
        let expected_a6 = convert(manifest.clone(), A6, &config).unwrap();
        assert_eq!(
            user_fields(&as_a6),
            user_fields(&expected_a6),
            "{what} as v1alpha6"
        );
        let back = convert(as_a6, A5, &config).unwrap();
        assert_eq!(
            user_fields(&back),
            user_fields(manifest),
            "{what}: v1alpha6 -> v1alpha5 unchanged"
        );
    }

    // Stored as v1beta1 (the hub), with the default provider's namespace and the v1beta1 shapes.
    let name = |kind: &str| {
        applied
            .iter()
            .find(|m| m["kind"] == kind)
            .map(|m| m["metadata"]["name"].as_str().unwrap().to_string())
            .unwrap()
    };
    let pipeline = Api::<Pipeline>::namespaced(client.clone(), &ns)
        .get(&name("Pipeline"))
        .await
        .unwrap();
    assert_eq!(pipeline.spec.provider, NamespacedName::new(PROVIDER_NS, "stub"));
    assert_eq!(pipeline.spec.framework.name, "tfx");
    assert_eq!(
        pipeline.spec.framework.parameters["components"],
        "base_pipeline.create_components"
    );
    assert_eq!(
        pipeline.spec.framework.parameters["beamArgs"],
        json!([{"name": "anArg", "value": "aValue"}])
    );
    let rcs = Api::<RunConfiguration>::namespaced(client.clone(), &ns);
    let rc = rcs.get("penguin-pipeline-recurring-run").await.unwrap();
    assert_eq!(
        rc.spec.triggers.schedules[0].cron_expression.as_str(),
        "0 * * * *"
    );
    let tuning = rcs.get("penguin-pipeline-tuning").await.unwrap();
    let parameters: Vec<(&str, &str)> = tuning
        .spec
        .run
        .parameters
        .iter()
        .map(|p| (p.name.as_str(), p.value.as_str()))
        .collect();
    assert_eq!(
        parameters,
        [("TRAINING_RUNS", "100"), ("learning_rate", "0.01")],
        "the map form becomes a list sorted by name"
    );
    let run = Api::<Run>::namespaced(client.clone(), &ns)
        .get(&name("Run"))
        .await
        .unwrap();
    let reference = &run.spec.parameters[1]
        .value_from
        .as_ref()
        .unwrap()
        .run_configuration_ref;
    assert_eq!(reference.output_artifact, "examples");
    let schedule = Api::<RunSchedule>::namespaced(client.clone(), &ns)
        .get(&name("RunSchedule"))
        .await
        .unwrap();
    assert_eq!(schedule.spec.schedule.cron_expression.as_str(), "0 * * * *");

    // The v1beta1 object is what etcd holds: read through the v1beta1 endpoint it has no v1alpha5 field left.
    let raw = read_as(&client, &ns, HUB, &applied[0]).await;
    assert!(raw["spec"].get("tfxComponents").is_none(), "{raw}");
}

/// Issue 7: a v1alpha5 Pipeline, Experiment and RunConfiguration from the user documentation reconcile with the
/// operator (direct executor, stub provider), and the v1alpha5 status reads as the documentation shows it.
#[tokio::test]
async fn v1alpha5_manifests_reconcile() {
    let (client, ns) = client_and_namespace().await;
    let mut config = support::config_for(&ns);
    config.spec.executor = kfp_operator::config::ExecutorKind::Direct;
    let context = direct_context(client.clone(), config);
    let operator = support::RunningOperator::start(context);

    let mut manifests = v1alpha5_fixture("pipeline.yaml");
    manifests.extend(v1alpha5_fixture("experiment.yaml"));
    manifests.extend(v1alpha5_fixture("runconfiguration.yaml"));
    let applied = apply_manifests(&client, &ns, manifests).await;

    let pipelines: Api<Pipeline> = Api::namespaced(client.clone(), &ns);
    let pipeline = support::wait_for_state(
        &pipelines,
        "penguin-pipeline",
        SynchronizationState::Succeeded,
        |p: &Pipeline| p.status.as_ref(),
    )
    .await;
    let version = pipeline.status.unwrap().version;
    assert!(
        version.starts_with("v1-"),
        "the image tag leads the version: {version}"
    );
    let experiments: Api<Experiment> = Api::namespaced(client.clone(), &ns);
    support::wait_for_state(
        &experiments,
        "penguin-experiment",
        SynchronizationState::Succeeded,
        |e: &Experiment| e.status.as_ref(),
    )
    .await;
    let rcs: Api<RunConfiguration> = Api::namespaced(client.clone(), &ns);
    support::wait_for_state(
        &rcs,
        "penguin-pipeline-recurring-run",
        SynchronizationState::Succeeded,
        |rc: &RunConfiguration| rc.status.as_ref(),
    )
    .await;
    // onChange: pipeline started a Run of the new pipeline version, created by the operator through admission.
    let runs: Api<Run> = Api::namespaced(client.clone(), &ns);
    let run = kfp_testenv::wait_for("a Run of the RunConfiguration", support::WAIT, || async {
        let list = runs.list(&Default::default()).await?;
        Ok::<_, kube::Error>(list.items.into_iter().next())
    })
    .await
    .unwrap();
    assert_eq!(run.spec.pipeline.version, version);
    assert_eq!(run.spec.provider, NamespacedName::new(PROVIDER_NS, "stub"));

    // Read as v1alpha5: the status fields the Go operator's documentation shows.
    let pipeline_a5 = read_as(&client, &ns, A5, &applied[0]).await;
    assert_eq!(pipeline_a5["status"]["synchronizationState"], "Succeeded");
    assert_eq!(pipeline_a5["status"]["version"], json!(version));
    assert_eq!(pipeline_a5["status"]["providerId"], "create-pipeline-succeeded");
    assert_eq!(
        pipeline_a5["spec"], applied[0]["spec"],
        "the spec reads back unchanged"
    );
    assert_eq!(
        pipeline_a5["metadata"]["annotations"]["pipelines.kubeflow.org/provider"],
        "stub"
    );
    let rc_a5 = read_as(&client, &ns, A5, &applied[2]).await;
    assert_eq!(rc_a5["status"]["synchronizationState"], "Succeeded");
    operator.stop().await;
}

/// The direct executor with the stub provider as `PROVIDER_NS/stub`, compiling `tfx` pipelines with the stub
/// compiler (as `kfp-operator local` does).
fn direct_context(
    client: Client,
    config: kfp_operator::config::OperatorConfig,
) -> Arc<kfp_operator::controllers::Context> {
    use kfp_operator::executor::Completions;
    use kfp_operator::executor::direct::{DirectExecutor, StaticResolver};
    let metrics = support::metrics();
    let completions = Completions::default();
    let provider: Arc<dyn kfp_core::provider::Provider> = Arc::new(kfp_providers::stub::StubProvider::new());
    let resolver = StaticResolver::new().with(NamespacedName::new(PROVIDER_NS, "stub"), provider);
    let compiler = kfp_operator::compiler::local::LocalCompiler::new().with_stub_for("tfx");
    let executor = DirectExecutor::new(
        Arc::new(resolver),
        Arc::new(compiler),
        completions.clone(),
        metrics.clone(),
    );
    kfp_operator::controllers::Context::new(
        client,
        Arc::new(executor),
        Some(completions),
        Arc::new(config),
        metrics,
    )
}

/// A v1alpha5 object the conversion cannot read is refused with the conversion's message naming the object. (The
/// API server reports every conversion webhook failure as 500 InternalError, whatever the webhook says.)
#[tokio::test]
async fn a_v1alpha5_object_that_cannot_be_converted_is_refused_naming_it() {
    let (client, ns) = client_and_namespace().await;
    let message = refused_with(
        &client,
        &ns,
        json!({"apiVersion": A5, "kind": "Run",
            "metadata": {"name": "bad-parameters", "annotations": {"pipelines.kubeflow.org/provider": "stub"}},
            "spec": {"pipeline": "p", "runtimeParameters": {"learning_rate": 0.01}}}),
        500..501,
    )
    .await;
    assert!(message.contains("conversion webhook"), "{message}");
    assert!(
        message.contains(r#"Cannot convert Run "#) && message.contains("bad-parameters"),
        "{message}"
    );
    assert!(
        message.contains("runtimeParameters.learning_rate must be a string"),
        "{message}"
    );
}

// ---------------------------------------------------------------------------------------------------------------
// Admission: every rule refused by the API server
// ---------------------------------------------------------------------------------------------------------------

fn pipeline(provider: &str, framework: &str) -> Value {
    json!({"apiVersion": HUB, "kind": "Pipeline", "metadata": {"name": "p"},
        "spec": {"provider": provider, "image": "img:1", "framework": {"name": framework, "parameters": {}}}})
}

const STUB: &str = "kfp-webhook-providers/stub";

#[tokio::test]
async fn pipeline_provider_must_exist() {
    let (client, ns) = client_and_namespace().await;
    let message = refused(&client, &ns, pipeline("kfp-webhook-providers/missing", "stub")).await;
    assert!(
        message.contains(r#"admission webhook "vpipeline.pipelines.kubeflow.org" denied the request"#),
        "{message}"
    );
    assert!(
        message.contains(r#"Pipeline.pipelines.kubeflow.org "p" is invalid: spec.provider: Not found: "kfp-webhook-providers/missing""#),
        "{message}"
    );
    // A v1alpha5 Pipeline naming a missing provider: converted, then refused naming the field v1alpha5 has (the
    // provider annotation), not the v1beta1 one.
    let message = refused(
        &client,
        &ns,
        json!({"apiVersion": A5, "kind": "Pipeline",
            "metadata": {"name": "p5", "annotations": {"pipelines.kubeflow.org/provider": "missing"}},
            "spec": {"image": "img", "tfxComponents": "a.b"}}),
    )
    .await;
    assert!(
        message.contains(r#"Pipeline.pipelines.kubeflow.org "p5" is invalid: metadata.annotations[pipelines.kubeflow.org/provider]: Not found: "kfp-webhook-providers/missing""#),
        "{message}"
    );
}

#[tokio::test]
async fn pipeline_namespace_must_be_allowed_by_the_provider() {
    let (client, ns) = client_and_namespace().await;
    let message = refused(&client, &ns, pipeline("kfp-webhook-providers/restricted", "stub")).await;
    assert!(
        message.contains(&format!(
            r#"metadata.namespace: Forbidden: namespace "{ns}" is not allowed by provider kfp-webhook-providers/restricted (its spec.allowedNamespaces: elsewhere)"#
        )),
        "{message}"
    );
}

/// Framework names compare ignoring case at admission, as in workflow building (decision 0007).
#[tokio::test]
async fn decision_13_pipeline_framework_is_supported_ignoring_case() {
    let (client, ns) = client_and_namespace().await;
    created(&client, &ns, pipeline(STUB, "STUB")).await;
    let message = refused(&client, &ns, pipeline(STUB, "kfpsdk")).await;
    assert!(
        message
            .contains(r#"spec.framework.name: Unsupported value: "kfpsdk": supported values: "stub", "tfx""#),
        "{message}"
    );
}

fn run_with_both_value_and_value_from(api_version: &str) -> Value {
    let parameter = json!({"name": "x", "value": "1",
        "valueFrom": {"runConfigurationRef": {"name": "base", "outputArtifact": "a"}}});
    if api_version == HUB {
        json!({"apiVersion": HUB, "kind": "Run", "metadata": {"name": "r"},
            "spec": {"provider": STUB, "pipeline": "p", "parameters": [parameter]}})
    } else {
        json!({"apiVersion": api_version, "kind": "Run",
            "metadata": {"name": "r", "annotations": {"v1beta1.pipelines.kubeflow.org/conversions.remainder": format!(r#"{{"providerNamespace":"{PROVIDER_NS}"}}"#)}},
            "spec": {"provider": "stub", "pipeline": "p", "runtimeParameters": [parameter]}})
    }
}

/// `vrun`: value and valueFrom exclude each other. v1beta1 requests meet the CRD's CEL rule first;
/// v1alpha6 ones (no CEL there) are checked by the webhook after conversion.
#[tokio::test]
async fn run_parameters_take_value_or_value_from() {
    let (client, ns) = client_and_namespace().await;
    let message = refused(&client, &ns, run_with_both_value_and_value_from(HUB)).await;
    assert!(
        message.contains("spec.parameters[0]: Invalid value")
            && message.contains("only one of value or valueFrom can be set"),
        "{message}"
    );
    let message = refused(&client, &ns, run_with_both_value_and_value_from(A6)).await;
    assert!(
        message.contains(r#"admission webhook "vrun.pipelines.kubeflow.org" denied the request"#),
        "{message}"
    );
    assert!(
        // v1alpha6 calls them runtimeParameters.
        message.contains(r#"spec.runtimeParameters[0]: Invalid value: {"name":"x","value":"1","valueFrom""#)
            && message.contains(r#"only one of value or valueFrom can be set (parameter "x")"#),
        "{message}"
    );
}

/// `vrun`: a Run's spec never changes; metadata does (the operator's finalizer and annotations).
#[tokio::test]
async fn run_spec_is_immutable() {
    let (client, ns) = client_and_namespace().await;
    created(
        &client,
        &ns,
        json!({"apiVersion": HUB, "kind": "Run", "metadata": {"name": "r"},
            "spec": {"provider": STUB, "pipeline": "p", "experimentName": "e"}}),
    )
    .await;
    let hub = dynamic(&client, &ns, HUB, "Run");
    merge(&hub, "r", json!({"metadata": {"labels": {"team": "ml"}}}))
        .await
        .unwrap();
    let error = merge(&hub, "r", json!({"spec": {"experimentName": "other"}}))
        .await
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("the spec of a Run is immutable; create a new Run instead"),
        "the CRD's CEL rule: {error}"
    );
    // Through v1alpha6 the CEL rule of v1beta1 does not apply; the webhook refuses, naming what changed.
    let a6 = dynamic(&client, &ns, A6, "Run");
    let error = merge(&a6, "r", json!({"spec": {"experimentName": "other"}}))
        .await
        .unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains(
            "spec: Forbidden: the spec of a Run is immutable (changed: spec.experimentName); create a new Run instead"
        ),
        "{message}"
    );
}

fn rc(triggers: Value) -> Value {
    json!({"apiVersion": HUB, "kind": "RunConfiguration", "metadata": {"name": "rc"},
        "spec": {"run": {"provider": STUB, "pipeline": "p"}, "triggers": triggers}})
}

/// `vrunconfiguration`: duplicate triggers and bad cron expressions are refused.
#[tokio::test]
async fn run_configuration_triggers_are_unique_and_crons_parse() {
    let (client, ns) = client_and_namespace().await;
    let message = refused(
        &client,
        &ns,
        rc(json!({"schedules": [{"cronExpression": "0 * * * *"}, {"cronExpression": "0 * * * *"}]})),
    )
    .await;
    assert!(
        message.contains(r#"spec.triggers.schedules[1]: Duplicate value: {"cronExpression":"0 * * * *"}"#),
        "{message}"
    );
    // onChange and runConfigurations are sets in the CRD: the API server itself refuses exact duplicates.
    let message = refused(&client, &ns, rc(json!({"onChange": ["pipeline", "pipeline"]}))).await;
    assert!(
        message.contains(r#"spec.triggers.onChange[1]: Duplicate value: "pipeline""#),
        "{message}"
    );
    // The same RunConfiguration named with and without its namespace: only the webhook sees that.
    let message = refused(
        &client,
        &ns,
        rc(json!({"runConfigurations": [format!("{ns}/base"), "base"]})),
    )
    .await;
    assert!(
        message.contains(r#"spec.triggers.runConfigurations[1]: Duplicate value: "base""#),
        "{message}"
    );
    let message = refused(
        &client,
        &ns,
        rc(json!({"schedules": [{"cronExpression": "0 25 * * *"}]})),
    )
    .await;
    assert!(
        message.contains(
            r#"spec.triggers.schedules[0].cronExpression: Invalid value: "0 25 * * *": hour 25 is out of range 0-23"#
        ),
        "{message}"
    );
    let message = refused(&client, &ns, rc(json!({"runConfigurations": ["rc"]}))).await;
    assert!(
        message.contains(r#"spec.triggers.runConfigurations[0]: Invalid value: "rc": a RunConfiguration cannot be triggered by its own runs"#),
        "{message}"
    );
    // A v1alpha5 RunConfiguration's cron strings are checked the same way, after conversion, and named as v1alpha5
    // writes them (plain strings).
    let message = refused(
        &client,
        &ns,
        json!({"apiVersion": A5, "kind": "RunConfiguration",
            "metadata": {"name": "rc5", "annotations": {"pipelines.kubeflow.org/provider": "stub"}},
            "spec": {"run": {"pipeline": "p"}, "triggers": {"schedules": ["every hour"]}}}),
    )
    .await;
    assert!(
        message.contains(r#"RunConfiguration.pipelines.kubeflow.org "rc5" is invalid: spec.triggers.schedules[0]: Invalid value: "every hour": expected 5 fields, or 6 with leading seconds, found 2"#),
        "{message}"
    );
    created(
        &client,
        &ns,
        rc(
            json!({"schedules": [{"cronExpression": "0 * * * *"}, {"cronExpression": "30 0 * * * *"}],
            "onChange": ["pipeline", "runSpec"], "runConfigurations": ["base"]}),
        ),
    )
    .await;
}

/// A RunSchedule's cron expression is checked with the real parser, whose message is shown.
#[tokio::test]
async fn decision_15_run_schedule_cron_is_parsed() {
    let (client, ns) = client_and_namespace().await;
    let message = refused(
        &client,
        &ns,
        json!({"apiVersion": HUB, "kind": "RunSchedule", "metadata": {"name": "rs"},
            "spec": {"provider": STUB, "pipeline": "p", "schedule": {"cronExpression": "*/0 * * * *"}}}),
    )
    .await;
    assert!(
        message.contains(r#"admission webhook "vrunschedule.pipelines.kubeflow.org" denied the request"#)
            && message.contains(
                r#"spec.schedule.cronExpression: Invalid value: "*/0 * * * *": minute step 0 is out of range 1-59"#
            ),
        "{message}"
    );
}

/// Every kind that names a Provider needs an existing one that allows its namespace, not only Pipelines
/// (`docs/decisions/0007-webhooks.md`).
#[tokio::test]
async fn every_kind_that_names_a_provider_needs_it_to_exist_and_allow_the_namespace() {
    let (client, ns) = client_and_namespace().await;
    let objects = |provider: &str| {
        [
            (
                "experiment",
                "spec.provider",
                json!({"apiVersion": HUB, "kind": "Experiment", "metadata": {"name": "e"},
                    "spec": {"provider": provider, "description": "d"}}),
            ),
            (
                "run",
                "spec.provider",
                json!({"apiVersion": HUB, "kind": "Run", "metadata": {"name": "r"},
                    "spec": {"provider": provider, "pipeline": "p"}}),
            ),
            (
                "runschedule",
                "spec.provider",
                json!({"apiVersion": HUB, "kind": "RunSchedule", "metadata": {"name": "rs"},
                    "spec": {"provider": provider, "pipeline": "p", "schedule": {"cronExpression": "0 * * * *"}}}),
            ),
            (
                "runconfiguration",
                "spec.run.provider",
                json!({"apiVersion": HUB, "kind": "RunConfiguration", "metadata": {"name": "rc"},
                    "spec": {"run": {"provider": provider, "pipeline": "p"}}}),
            ),
        ]
    };
    for (kind, field, object) in objects("kfp-webhook-providers/missing") {
        let message = refused(&client, &ns, object).await;
        assert!(
            message.contains(&format!(
                r#"admission webhook "v{kind}.pipelines.kubeflow.org" denied the request"#
            )) && message.contains(&format!(r#"{field}: Not found: "kfp-webhook-providers/missing""#)),
            "{message}"
        );
    }
    for (kind, _, object) in objects("kfp-webhook-providers/restricted") {
        let message = refused(&client, &ns, object).await;
        assert!(
            message.contains(&format!(r#"metadata.namespace: Forbidden: namespace "{ns}" is not allowed by provider kfp-webhook-providers/restricted"#)),
            "{kind}: {message}"
        );
    }
    for (_, _, object) in objects(STUB) {
        created(&client, &ns, object).await;
    }
}

fn provider(spec: Value) -> Value {
    let mut base = json!({"serviceImage": "svc:1", "serviceAccount": "sa", "pipelineRootStorage": "gs://b"});
    base.as_object_mut()
        .unwrap()
        .extend(spec.as_object().unwrap().clone());
    json!({"apiVersion": HUB, "kind": "Provider", "metadata": {"name": "prv"}, "spec": base})
}

/// `vprovider`: the env names the operator sets itself are refused, whatever their case (the CRD's CEL
/// rule); duplicate framework names and patches that are not JSON of their type are refused by the webhook.
#[tokio::test]
async fn provider_reserved_env_names_frameworks_and_patches() {
    let (client, ns) = client_and_namespace().await;
    let message = refused(
        &client,
        &ns,
        provider(json!({"podTemplateEnv": [{"name": "FINE", "value": "1"}, {"name": "parameters_kfpNamespace", "value": "x"}]})),
    )
    .await;
    assert!(
        message.contains("spec.podTemplateEnv[1]")
            && message.contains("the name parameters_kfpNamespace is reserved by the operator"),
        "{message}"
    );
    let message = refused(
        &client,
        &ns,
        provider(json!({"frameworks": [{"name": "tfx", "image": "a"}, {"name": "TFX", "image": "b"}]})),
    )
    .await;
    assert!(
        message.contains(r#"admission webhook "vprovider.pipelines.kubeflow.org" denied the request"#)
            && message.contains(r#"spec.frameworks[1].name: Duplicate value: "TFX""#),
        "{message}"
    );
    let message = refused(
        &client,
        &ns,
        provider(json!({"frameworks": [{"name": "tfx", "image": "a", "patches": [{"type": "json", "payload": "{\"op\": \"add\"}"}]}]})),
    )
    .await;
    assert!(
        message.contains("spec.frameworks[0].patches[0].payload: Invalid value")
            && message.contains("a json patch is a JSON array of RFC 6902 operations"),
        "{message}"
    );
}

/// An update that leaves the spec alone always passes (finalizer and annotation writes); a spec change is checked
/// again, and fails once the Provider is gone.
#[tokio::test]
async fn metadata_updates_pass_when_the_provider_is_gone() {
    let (client, ns) = client_and_namespace().await;
    let providers: Api<Provider> = Api::namespaced(client.clone(), &ns);
    providers
        .create(&PostParams::default(), &support::provider_manifest(&ns, "own"))
        .await
        .unwrap();
    let own = format!("{ns}/own");
    created(&client, &ns, pipeline(&own, "stub")).await;
    providers.delete("own", &Default::default()).await.unwrap();
    let pipelines = dynamic(&client, &ns, HUB, "Pipeline");
    merge(
        &pipelines,
        "p",
        json!({"metadata": {"finalizers": ["finalizer.pipelines.kubeflow.org"]}}),
    )
    .await
    .unwrap();
    merge(&pipelines, "p", json!({"metadata": {"finalizers": null}}))
        .await
        .unwrap();
    let error = merge(&pipelines, "p", json!({"spec": {"image": "img:2"}}))
        .await
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains(&format!(r#"spec.provider: Not found: "{own}""#)),
        "{error}"
    );
}

// ---------------------------------------------------------------------------------------------------------------
// Malformed reviews, straight to the server
// ---------------------------------------------------------------------------------------------------------------

fn https(webhooks: &WebhookServer) -> reqwest::Client {
    kfp_providers::http::install_crypto_provider();
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(webhooks.ca_pem.as_bytes()).unwrap())
        .build()
        .unwrap()
}

async fn post(http: &reqwest::Client, url: &str, body: &str) -> (u16, Value) {
    let response = http
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}")),
    )
}

#[tokio::test]
async fn malformed_reviews_get_a_clean_error_and_the_server_keeps_serving() {
    let webhooks = webhooks().await;
    let http = https(webhooks);
    let convert_url = format!("{}/convert", webhooks.url);
    for body in [
        "",
        "{",
        "[1, 2]",
        r#"{"request": {"uid": 7}}"#,
        r#"{"kind": "ConversionReview"}"#,
    ] {
        let (status, review) = post(&http, &convert_url, body).await;
        assert_eq!(status, 400, "{body}: {review}");
        assert_eq!(review["response"]["result"]["status"], "Failure", "{body}");
        assert!(
            review["response"]["result"]["message"]
                .as_str()
                .unwrap()
                .contains("ConversionReview")
        );
    }
    let validate_url = format!(
        "{}/validate-pipelines-kubeflow-org-v1beta1-pipeline",
        webhooks.url
    );
    for body in [
        "",
        "null",
        r#"{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}"#,
    ] {
        let (status, review) = post(&http, &validate_url, body).await;
        assert_eq!(status, 400, "{body}: {review}");
        assert_eq!(review["response"]["allowed"], false, "{body}");
        assert!(
            review["response"]["status"]["message"]
                .as_str()
                .unwrap()
                .contains("AdmissionReview")
        );
    }
    // A well-formed review whose object does not decode: refused, naming the object, uid echoed.
    let review = |kind: &str, object: Value| {
        json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
            "uid": "4a5d0ee8-1111-2222-3333-444455556666",
            "kind": {"group": "pipelines.kubeflow.org", "version": "v1beta1", "kind": kind},
            "resource": {"group": "pipelines.kubeflow.org", "version": "v1beta1", "resource": "pipelines"},
            "name": "p", "namespace": "ns", "operation": "CREATE", "userInfo": {"username": "alice"},
            "object": object, "oldObject": null}})
        .to_string()
    };
    let (status, answer) = post(
        &http,
        &validate_url,
        &review("Pipeline", json!({"apiVersion": HUB, "kind": "Pipeline", "metadata": {"name": "p"}, "spec": {"provider": 5}})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(answer["response"]["uid"], "4a5d0ee8-1111-2222-3333-444455556666");
    assert_eq!(answer["response"]["allowed"], false);
    let message = answer["response"]["status"]["message"].as_str().unwrap();
    assert!(
        message.contains(r#"The Pipeline "p" cannot be read as pipelines.kubeflow.org/v1beta1"#),
        "{message}"
    );
    // A review of another kind than the path's.
    let (_, answer) = post(
        &http,
        &validate_url,
        &review(
            "Run",
            json!({"apiVersion": HUB, "kind": "Run", "metadata": {"name": "p"}, "spec": {"provider": STUB}}),
        ),
    )
    .await;
    assert_eq!(answer["response"]["allowed"], false);
    assert!(
        answer["response"]["status"]["message"]
            .as_str()
            .unwrap()
            .contains("was sent a Run")
    );
    // The webhook refuses reserved env names itself too (for CRDs installed without the CEL rule).
    let (_, answer) = post(
        &http,
        &format!(
            "{}/validate-pipelines-kubeflow-org-v1beta1-provider",
            webhooks.url
        ),
        &review(
            "Provider",
            json!({"apiVersion": HUB, "kind": "Provider", "metadata": {"name": "prv", "namespace": "ns"},
                "spec": {"serviceImage": "s", "serviceAccount": "sa", "pipelineRootStorage": "gs://b",
                         "podTemplateEnv": [{"name": "ProviderName", "value": "x"}]}}),
        ),
    )
    .await;
    assert_eq!(answer["response"]["allowed"], false);
    let status = &answer["response"]["status"];
    assert_eq!(status["code"], 422);
    assert_eq!(status["reason"], "Invalid");
    assert_eq!(
        status["details"]["causes"][0]["field"],
        "spec.podTemplateEnv[0].name"
    );
    assert_eq!(status["details"]["causes"][0]["reason"], "FieldValueInvalid");
    // Wrong method: 405, no panic; and the server still converts afterwards.
    let response = http.get(&convert_url).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 405);
    let body = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview", "request": {
        "uid": "u-1", "desiredAPIVersion": HUB, "objects": [
            {"apiVersion": A5, "kind": "Experiment", "metadata": {"name": "e", "namespace": "ns"}, "spec": {}}]}});
    let (status, answer) = post(&http, &convert_url, &body.to_string()).await;
    assert_eq!(status, 200);
    assert_eq!(answer["response"]["uid"], "u-1");
    assert_eq!(answer["response"]["result"]["status"], "Success");
    assert_eq!(
        answer["response"]["convertedObjects"][0]["spec"]["provider"],
        "kfp-webhook-providers/stub"
    );
}
