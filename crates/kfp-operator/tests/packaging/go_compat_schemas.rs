//! The schemas against the Go KFP Operator's (docs/decisions/0015-go-schema-compatibility.md).
//!
//! Two kinds of tests share one control plane with this project's CRDs converting through a webhook server in this
//! process and its ValidatingWebhookConfiguration pointing there too (as in `webhooks.rs`), and the Providers the
//! Go operator's documentation names (`provider-namespace/kfp`, `provider-namespace/provider-name`,
//! `kfp-operator-system/stub`):
//! - plain tests of each relaxation and each kept refusal, with small manifests of their own;
//! - ignored tests that read the Go operator's CRDs and documentation manifests from `KFP_GO_COMPAT_DIR` (another
//!   project's files, never checked in): a control plane of their own with Go's CRDs of one version tells which
//!   manifests Go's schema accepts (server-side dry run); each of those must be accepted by ours too, or refused
//!   with the message [`REFUSALS`] names for it.

use crate::support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kfp_core::conversion::ConversionConfig;
use kfp_core::values::NamespacedName;
use kfp_testenv::TestEnv;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::GroupVersionKind;
use kube::{Client, ResourceExt};
use serde_json::{Value, json};
use tokio::sync::OnceCell;

const WAIT: Duration = Duration::from_secs(60);
const HUB: &str = "pipelines.kubeflow.org/v1beta1";
const A5: &str = "pipelines.kubeflow.org/v1alpha5";
const MANAGER: &str = "kfp-go-compat-tests";
/// The namespace of the Providers the Go documentation names; v1alpha6 bare provider names resolve here
/// (`workflowNamespace`), v1alpha5 objects get `kfp` in it (`defaultProvider`).
const PROVIDER_NS: &str = "provider-namespace";
const COMPAT_DIR_ENV: &str = "KFP_GO_COMPAT_DIR";

/// Manifests that Go's schema accepts and ours refuses on purpose, each with a fragment of the refusal's message.
/// Every entry is a decision of docs/decisions/0015-go-schema-compatibility.md.
const REFUSALS: &[(&str, &str)] = &[
    // docs/decisions/0015, "Kept refusals": the Go documentation writes a framework patch under `patch`; Go's schema
    // pruned it, leaving a patch without payload, and every Pipeline of the framework compiled without it. Ours
    // refuses the field and says to rename it to `payload`.
    (
        "head-docs-gen_content_docs_reference_resources_provider.md-2.yaml",
        PATCH_RENAMED,
    ),
    (
        "head-docs-gen_content_versions_v0.7.0_reference_resources_provider.md-1.yaml",
        PATCH_RENAMED,
    ),
    (
        "head-docs-gen_content_versions_v0.7.0_reference_resources_provider.md-2.yaml",
        PATCH_RENAMED,
    ),
    (
        "v0.7.0-docs-gen_content_docs_reference_resources_provider.md-1.yaml",
        PATCH_RENAMED,
    ),
    (
        "v0.7.0-docs-gen_content_docs_reference_resources_provider.md-2.yaml",
        PATCH_RENAMED,
    ),
    (
        "v0.7.0-docs-gen_content_versions_v0.7.0_reference_resources_provider.md-2.yaml",
        PATCH_RENAMED,
    ),
];

const PATCH_RENAMED: &str = "patch is not a field of a framework patch: rename it to payload";

// ---------------------------------------------------------------------------------------------------------------
// The control plane with our CRDs and webhooks
// ---------------------------------------------------------------------------------------------------------------

fn conversion_config() -> ConversionConfig {
    ConversionConfig {
        workflow_namespace: PROVIDER_NS.into(),
        default_tfx_image: "kfp-operator/tfx-compiler:test".into(),
        default_provider: NamespacedName::new(PROVIDER_NS, "kfp"),
        default_framework: "tfx".into(),
    }
}

static OURS: OnceCell<()> = OnceCell::const_new();

/// The shared control plane, set up once: CRDs and webhooks, and the Providers the Go documentation names (no
/// `allowedNamespaces`; frameworks `tfx`, `kfpsdk` and `stub`).
async fn ours() -> &'static TestEnv {
    // Its own control plane: its CRDs convert through this module's webhook server.
    static ENV: OnceCell<TestEnv> = OnceCell::const_new();
    let env = ENV
        .get_or_init(|| async { TestEnv::start().await.unwrap_or_else(|e| panic!("{e}")) })
        .await;
    OURS.get_or_init(|| async {
        support::webhook_server::serve_webhooks(env, conversion_config(), MANAGER).await;
        let client = env.client().await.unwrap();
        let apply = PatchParams::apply(MANAGER).force();

        let namespaces: Api<Namespace> = Api::all(client.clone());
        for namespace in [PROVIDER_NS, "kfp-operator-system"] {
            let object: Namespace = serde_json::from_value(json!({"metadata": {"name": namespace}})).unwrap();
            namespaces
                .patch(namespace, &apply, &Patch::Apply(&object))
                .await
                .unwrap();
        }
        for (namespace, name) in [
            (PROVIDER_NS, "kfp"),
            (PROVIDER_NS, "provider-name"),
            ("kfp-operator-system", "stub"),
        ] {
            let provider = json!({"apiVersion": HUB, "kind": "Provider",
                "metadata": {"name": name, "namespace": namespace},
                "spec": {"serviceImage": "kfp-operator/provider-service:test", "serviceAccount": "default",
                    "pipelineRootStorage": "gs://bucket",
                    "frameworks": [{"name": "tfx", "image": "tfx-compiler:test"},
                        {"name": "kfpsdk", "image": "kfpsdk-compiler:test"},
                        {"name": "stub", "image": "stub-compiler:test"}]}});
            let api = dynamic(&client, namespace, HUB, "Provider");
            // The admission webhook refuses everything until the API server has picked its configuration up.
            kfp_testenv::wait_for(format!("Provider {namespace}/{name}"), WAIT, || async {
                match api.patch(name, &apply, &Patch::Apply(&provider)).await {
                    Ok(_) => Ok(Some(())),
                    Err(kube::Error::Api(status)) => Err(status.message),
                    Err(e) => Err(e.to_string()),
                }
            })
            .await
            .unwrap();
        }
        // The conversion webhook is in place once a v1alpha5 object converts, the admission webhook once it
        // refuses what only it refuses (both dry runs).
        let probe = env.namespace().await.unwrap();
        kfp_testenv::wait_for("the conversion webhook to be called", WAIT, || async {
            let object = json!({"apiVersion": A5, "kind": "Experiment", "metadata": {"name": "probe"},
                "spec": {"description": "probe"}});
            Ok::<_, kube::Error>(try_create(&client, probe.name(), &object).await.ok().map(|_| ()))
        })
        .await
        .unwrap();
        kfp_testenv::wait_for("the admission webhook to be called", WAIT, || async {
            let object = json!({"apiVersion": HUB, "kind": "Experiment", "metadata": {"name": "probe"},
                "spec": {"provider": "nowhere/nothing"}});
            Ok::<_, kube::Error>(match try_create(&client, probe.name(), &object).await {
                Err(message) if message.contains("admission webhook") => Some(()),
                _ => None,
            })
        })
        .await
        .unwrap();
    })
    .await;
    env
}

async fn client_and_namespace() -> (Client, String) {
    let env = ours().await;
    let namespace = env.namespace().await.unwrap();
    (env.client().await.unwrap(), namespace.name().to_string())
}

fn dynamic(client: &Client, namespace: &str, api_version: &str, kind: &str) -> Api<DynamicObject> {
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let gvk = GroupVersionKind::gvk(group, version, kind);
    let resource = ApiResource::from_gvk_with_plural(&gvk, &format!("{}s", kind.to_ascii_lowercase()));
    Api::namespaced_with(client.clone(), namespace, &resource)
}

/// A server-side dry-run create of `object` in `namespace`: the stored object, or the API server's message.
async fn try_create(client: &Client, namespace: &str, object: &Value) -> Result<Value, String> {
    let api_version = object["apiVersion"].as_str().unwrap_or_default();
    let kind = object["kind"].as_str().unwrap_or_default();
    let api = dynamic(client, namespace, api_version, kind);
    let mut object = object.clone();
    object["metadata"]["namespace"] = json!(namespace);
    let object: DynamicObject = serde_json::from_value(object).map_err(|e| e.to_string())?;
    let dry_run = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    match api.create(&dry_run, &object).await {
        Ok(created) => Ok(serde_json::to_value(created).unwrap()),
        Err(kube::Error::Api(status)) => Err(status.message),
        Err(other) => panic!("creating {kind} in {namespace}: {other}"),
    }
}

/// Creates `object` for real and reads it back in `read_as` (another version goes through the conversion webhook).
async fn create_and_read(client: &Client, namespace: &str, object: Value, read_as: &str) -> Value {
    let api_version = object["apiVersion"].as_str().unwrap();
    let kind = object["kind"].as_str().unwrap().to_string();
    let name = object["metadata"]["name"].as_str().unwrap().to_string();
    let api = dynamic(client, namespace, api_version, &kind);
    api.create(
        &PostParams::default(),
        &serde_json::from_value(object.clone()).unwrap(),
    )
    .await
    .unwrap_or_else(|e| panic!("creating {kind} {name}: {e}"));
    let read = dynamic(client, namespace, read_as, &kind)
        .get(&name)
        .await
        .unwrap_or_else(|e| panic!("reading {kind} {name} as {read_as}: {e}"));
    serde_json::to_value(read).unwrap()
}

async fn refused(client: &Client, namespace: &str, object: Value) -> String {
    match try_create(client, namespace, &object).await {
        Ok(stored) => panic!("the API server accepted {object} as {stored}"),
        Err(message) => message,
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Relaxations and kept refusals (no Go files needed)
// ---------------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_framework_without_image_and_a_patch_without_type_are_accepted() {
    let (client, namespace) = client_and_namespace().await;
    let provider = json!({"apiVersion": HUB, "kind": "Provider", "metadata": {"name": "imageless"},
        "spec": {"serviceImage": "svc:1", "serviceAccount": "default", "pipelineRootStorage": "gs://b",
            "frameworks": [{"name": "tfx", "patches": [{"payload": "[]"}]}]}});
    let stored = create_and_read(&client, &namespace, provider, HUB).await;
    let framework = &stored["spec"]["frameworks"][0];
    assert_eq!(framework["name"], "tfx");
    assert_eq!(framework.get("image"), None, "no image is stored: {framework}");
    assert_eq!(
        framework["patches"][0],
        json!({"type": "json", "payload": "[]"}),
        "a patch without type is a json patch (the schema default)"
    );
}

#[tokio::test]
async fn a_framework_patch_written_under_patch_is_refused_naming_payload() {
    let (client, namespace) = client_and_namespace().await;
    let message = refused(
        &client,
        &namespace,
        json!({"apiVersion": HUB, "kind": "Provider", "metadata": {"name": "go-docs"},
            "spec": {"serviceImage": "svc:1", "serviceAccount": "default", "pipelineRootStorage": "gs://b",
                "frameworks": [{"name": "tfx", "image": "tfx:1",
                    "patches": [{"type": "json", "patch": "[{\"op\": \"add\", \"path\": \"/a\", \"value\": 1}]"}]}]}}),
    )
    .await;
    assert!(
        message.contains("spec.frameworks[0].patches[0]") && message.contains(PATCH_RENAMED),
        "{message}"
    );
    assert!(
        message.contains("docs/decisions/0015-go-schema-compatibility.md"),
        "{message}"
    );
}

#[tokio::test]
async fn a_nameless_framework_and_a_patch_without_payload_are_refused_with_the_reason() {
    let (client, namespace) = client_and_namespace().await;
    let message = refused(
        &client,
        &namespace,
        json!({"apiVersion": HUB, "kind": "Provider", "metadata": {"name": "nameless"},
            "spec": {"serviceImage": "svc:1", "serviceAccount": "default", "pipelineRootStorage": "gs://b",
                "frameworks": [{"image": "tfx:1"}, {"name": "kfpsdk", "patches": [{"type": "merge"}]}]}}),
    )
    .await;
    assert!(message.contains("admission webhook"), "{message}");
    assert!(
        message
            .contains("spec.frameworks[0].name: Required value: Pipelines select a framework by this name"),
        "{message}"
    );
    assert!(
        message.contains("spec.frameworks[1].patches[0].payload: Required value: the patch as a JSON string"),
        "{message}"
    );
}

#[tokio::test]
async fn a_v1alpha5_provider_without_service_image_is_accepted_and_converted() {
    let (client, namespace) = client_and_namespace().await;
    // As the Go operator v0.7.0 documented v1alpha5 Providers: no serviceImage.
    let provider = json!({"apiVersion": A5, "kind": "Provider", "metadata": {"name": "kfp"},
        "spec": {"image": "kfp-operator-kfp-tfx-compiler:1", "executionMode": "v1", "serviceAccount": "kfp",
            "pipelineRootStorage": "gs://b", "defaultBeamArgs": [{"name": "project", "value": "p"}]}});
    let hub = create_and_read(&client, &namespace, provider, HUB).await;
    assert_eq!(
        hub["spec"]["serviceImage"].as_str().unwrap_or_default(),
        "",
        "{hub}"
    );
    assert_eq!(hub["spec"]["frameworks"][0]["name"], "tfx", "{hub}");
    let a5 = dynamic(&client, &namespace, A5, "Provider")
        .get("kfp")
        .await
        .unwrap();
    let a5 = serde_json::to_value(a5).unwrap();
    assert_eq!(a5["spec"].get("serviceImage"), None, "{a5}");
    assert_eq!(a5["spec"]["image"], "kfp-operator-kfp-tfx-compiler:1");
}

#[tokio::test]
async fn spec_is_optional_and_a_missing_one_names_the_first_field_needed() {
    let (client, namespace) = client_and_namespace().await;
    // v1alpha5 needs nothing in an Experiment's spec: the default provider applies.
    let experiment = json!({"apiVersion": A5, "kind": "Experiment", "metadata": {"name": "bare"}});
    let hub = create_and_read(&client, &namespace, experiment, HUB).await;
    assert_eq!(hub["spec"]["provider"], format!("{PROVIDER_NS}/kfp"), "{hub}");
    // A Provider without spec is stored, and a typed list (what a controller's watch reads) still decodes, the
    // spec-less one as the empty spec; its controller reports the missing serviceImage.
    let provider = json!({"apiVersion": HUB, "kind": "Provider", "metadata": {"name": "bare"}});
    let stored = create_and_read(&client, &namespace, provider, HUB).await;
    assert_eq!(stored.get("spec"), None, "{stored}");
    let providers: Api<kfp_core::resources::v1beta1::Provider> = Api::namespaced(client.clone(), &namespace);
    let listed = providers
        .list(&Default::default())
        .await
        .unwrap_or_else(|e| panic!("a typed list with a spec-less Provider: {e}"));
    let bare = listed
        .items
        .iter()
        .find(|p| p.name_any() == "bare")
        .expect("the spec-less Provider is listed");
    assert_eq!(bare.spec, Default::default());
    // Kinds that cannot do without their Provider say so.
    for kind in ["Pipeline", "Run", "RunSchedule", "Experiment"] {
        let object = json!({"apiVersion": HUB, "kind": kind, "metadata": {"name": "bare"}});
        let message = refused(&client, &namespace, object).await;
        assert!(
            message.contains("spec.provider: Required value: the Provider (NAMESPACE/NAME)"),
            "{kind}: {message}"
        );
        assert!(!message.contains("spec: Required value"), "{kind}: {message}");
    }
}

#[tokio::test]
async fn a_run_configuration_without_run_or_cron_expression_is_refused_by_field() {
    let (client, namespace) = client_and_namespace().await;
    let message = refused(
        &client,
        &namespace,
        json!({"apiVersion": HUB, "kind": "RunConfiguration", "metadata": {"name": "no-run"},
            "spec": {"triggers": {"onChange": ["pipeline"]}}}),
    )
    .await;
    assert!(
        message.contains("spec.run.provider: Required value: the Provider (NAMESPACE/NAME)"),
        "{message}"
    );
    let message = refused(
        &client,
        &namespace,
        json!({"apiVersion": HUB, "kind": "RunConfiguration", "metadata": {"name": "no-cron"},
            "spec": {"run": {"provider": format!("{PROVIDER_NS}/kfp"), "pipeline": "p"},
                "triggers": {"schedules": [{"startTime": "2024-01-01T00:00:00Z"}]}}}),
    )
    .await;
    assert!(
        message.contains(
            "spec.triggers.schedules[0].cronExpression: Required value: a cron expression of 5 fields"
        ),
        "{message}"
    );
    let message = refused(
        &client,
        &namespace,
        json!({"apiVersion": HUB, "kind": "RunSchedule", "metadata": {"name": "no-schedule"},
            "spec": {"provider": format!("{PROVIDER_NS}/kfp"), "pipeline": "p"}}),
    )
    .await;
    assert!(
        message.contains("spec.schedule.cronExpression: Required value: a cron expression of 5 fields"),
        "{message}"
    );
    // v1alpha5 names its provider by annotation or default: a RunConfiguration without run is accepted.
    let rc = json!({"apiVersion": A5, "kind": "RunConfiguration", "metadata": {"name": "a5-no-run"},
        "spec": {"triggers": {"onChange": ["pipeline"]}}});
    let hub = create_and_read(&client, &namespace, rc, HUB).await;
    assert_eq!(
        hub["spec"]["run"]["provider"],
        format!("{PROVIDER_NS}/kfp"),
        "{hub}"
    );
}

// ---------------------------------------------------------------------------------------------------------------
// The Go operator's CRDs and documentation manifests (KFP_GO_COMPAT_DIR)
// ---------------------------------------------------------------------------------------------------------------

fn compat_dir() -> PathBuf {
    match std::env::var_os(COMPAT_DIR_ENV) {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => panic!(
            "{COMPAT_DIR_ENV} is not set: these tests need a folder with the Go operator's go-crds/ and \
             go-doc-manifests/ (.ci/run sets it; docs/development.md says where the files come from)"
        ),
    }
}

/// A control plane with the Go operator's CRDs of `version` (their conversion settings removed: they install
/// standalone, and dry runs only need the schemas).
async fn go_control_plane(dir: &Path) -> (TestEnv, Client) {
    let env = TestEnv::start().await.unwrap_or_else(|e| panic!("{e}"));
    let client = env.client().await.unwrap();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let apply = PatchParams::apply(MANAGER).force();
    let manifests = kfp_testenv::read_manifests(&[dir]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(manifests.len(), 6, "{}: one CRD per kind", dir.display());
    for manifest in manifests {
        let mut crd = manifest.value;
        if let Some(spec) = crd["spec"].as_object_mut() {
            spec.remove("conversion");
        }
        let name = crd["metadata"]["name"].as_str().unwrap().to_string();
        crds.patch(&name, &apply, &Patch::Apply(&crd))
            .await
            .unwrap_or_else(|e| panic!("installing Go's {name}: {e}"));
        kfp_testenv::wait_until_served(&client, &name, WAIT)
            .await
            .unwrap();
    }
    (env, client)
}

/// Each manifest file of `go-doc-manifests/`, with its object (`None`: not YAML, as some doc snippets are not).
fn doc_manifests(dir: &Path) -> Vec<(String, Option<Value>)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&path).unwrap();
            let object = kfp_testenv::parse_yaml(&text, &path)
                .ok()
                .and_then(|objects| objects.into_iter().next())
                .map(|o| o.value);
            (name, object)
        })
        .collect()
}

fn outcome(result: &Result<Value, String>) -> String {
    match result {
        Ok(_) => "accepted".to_string(),
        Err(message) => format!("refused: {message}"),
    }
}

/// Every manifest Go's `version` schema accepts is accepted by ours, or refused as [`REFUSALS`] says.
async fn go_accepted_manifests_are_accepted(version: &str) {
    let compat = compat_dir();
    let manifests = doc_manifests(&compat.join("go-doc-manifests"));
    assert!(!manifests.is_empty(), "{} has doc manifests", compat.display());
    for (file, _) in REFUSALS {
        assert!(
            manifests.iter().any(|(name, _)| name == file),
            "REFUSALS names {file}, which is not in go-doc-manifests/"
        );
    }
    let (go_env, go) = go_control_plane(&compat.join("go-crds").join(version)).await;
    let go_namespace = go_env.namespace().await.unwrap();
    let (client, namespace) = client_and_namespace().await;

    let mut go_accepted = 0;
    let mut ours_accepted = 0;
    let mut report = Vec::new();
    let mut failures = Vec::new();
    for (file, object) in &manifests {
        let Some(object) = object else {
            report.push(format!("{file}: not YAML (skipped)"));
            continue;
        };
        let theirs = try_create(&go, go_namespace.name(), object).await;
        let mine = try_create(&client, &namespace, object).await;
        let expected = REFUSALS.iter().find(|(f, _)| f == file).map(|(_, m)| *m);
        report.push(format!(
            "{file}: Go {version} {} | ours {}",
            outcome(&theirs),
            outcome(&mine)
        ));
        go_accepted += usize::from(theirs.is_ok());
        ours_accepted += usize::from(mine.is_ok());
        match (&mine, expected) {
            (Err(message), Some(fragment)) if !message.contains(fragment) => {
                failures.push(format!("{file}: refused, but not with {fragment:?}: {message}"))
            }
            (Ok(_), Some(fragment)) => failures.push(format!(
                "{file}: accepted, but REFUSALS expects a refusal with {fragment:?}"
            )),
            (Err(message), None) if theirs.is_ok() => failures.push(format!(
                "{file}: Go {version} accepts it, ours refuses it: {message}"
            )),
            _ => {}
        }
    }
    eprintln!(
        "Go {version}: Go accepts {go_accepted} of {} manifests, ours {ours_accepted}\n{}",
        manifests.len(),
        report.join("\n")
    );
    // Go's schema accepts most of its own documentation: fewer means the Go control plane is not what it seems.
    assert!(
        go_accepted * 2 >= manifests.len(),
        "Go {version} accepted only {go_accepted} of {} manifests:\n{}",
        manifests.len(),
        report.join("\n")
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
#[ignore = "reads the Go operator's CRDs and doc manifests: set KFP_GO_COMPAT_DIR to a folder with go-crds/ and go-doc-manifests/ and run with --ignored"]
async fn go_doc_manifests_accepted_by_go_v0_7_0_are_accepted() {
    go_accepted_manifests_are_accepted("v0.7.0").await;
}

#[tokio::test]
#[ignore = "reads the Go operator's CRDs and doc manifests: set KFP_GO_COMPAT_DIR to a folder with go-crds/ and go-doc-manifests/ and run with --ignored"]
async fn go_doc_manifests_accepted_by_go_head_are_accepted() {
    go_accepted_manifests_are_accepted("head").await;
}
