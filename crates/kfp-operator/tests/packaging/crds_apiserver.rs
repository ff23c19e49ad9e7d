//! The generated CRDs on a real kube-apiserver + etcd (`kfp-testenv`): installed and served, the shared fixtures
//! round-trip through the typed API, printer columns and short names work, the status subresource is separate from
//! spec, and the schema refuses malformed objects with a message that names the field.

// Test code: failing loudly with the reason is the point.

use std::path::PathBuf;

use kfp_core::resources::v1beta1::{
    Experiment, Pipeline, Provider, ProviderAndId, Run, RunConfiguration, RunSchedule, Status,
};
use kfp_core::values::NamespacedName;
use kfp_testenv::TestEnv;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams, PostParams};
use kube::{Client, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;

const GROUP: &str = "pipelines.kubeflow.org";
const MANAGER: &str = "kfp-crd-tests";

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The repository's acceptance fixtures (`fixtures/README.md`).
fn fixtures_dir() -> PathBuf {
    repo_root().join("fixtures")
}

/// The shared control plane with our CRDs installed (idempotent: server-side apply).
async fn env() -> &'static TestEnv {
    let env = TestEnv::shared().await.unwrap_or_else(|e| panic!("{e}"));
    env.install_crds(&[repo_root().join("config/crd")])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    env
}

async fn client_and_namespace() -> (Client, String) {
    let env = env().await;
    let ns = env.namespace().await.unwrap_or_else(|e| panic!("{e}"));
    (
        env.client().await.unwrap_or_else(|e| panic!("{e}")),
        ns.name().to_string(),
    )
}

/// Every document of a fixture file, decoded as `K`.
fn fixture<K: DeserializeOwned>(file: &str) -> Vec<K> {
    let path = fixtures_dir().join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_saphyr::from_multiple(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Applies each fixture object into `ns` (generateName objects get a name: apply needs one) and checks that what
/// the API server stored reads back as the same typed object.
async fn round_trip<K>(client: &Client, ns: &str, file: &str)
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + std::fmt::Debug
        + Serialize
        + DeserializeOwned
        + HasSpec,
{
    let objects: Vec<K> = fixture(file);
    assert!(!objects.is_empty(), "{file} holds at least one object");
    let api: Api<K> = Api::namespaced(client.clone(), ns);
    for (i, mut object) in objects.into_iter().enumerate() {
        let meta = object.meta_mut();
        meta.namespace = Some(ns.to_string());
        if meta.name.is_none() {
            meta.name = Some(format!("{}{i}", meta.generate_name.take().unwrap_or_default()));
        }
        let name = object.meta().name.clone().unwrap_or_default();
        let applied = api
            .patch(
                &name,
                &PatchParams::apply(MANAGER).force(),
                &Patch::Apply(&object),
            )
            .await
            .unwrap_or_else(|e| panic!("{file}: applying {name} failed: {e}"));
        let read = api
            .get(&name)
            .await
            .unwrap_or_else(|e| panic!("{file}: reading {name} failed: {e}"));
        assert_eq!(
            read.spec_json(),
            object.spec_json(),
            "{file}: {name} reads back unchanged"
        );
        assert_eq!(applied.spec_json(), object.spec_json());
    }
}

/// Spec of a typed object as JSON, to compare what was sent with what was stored.
trait HasSpec {
    fn spec_json(&self) -> serde_json::Value;
}

macro_rules! has_spec {
    ($($kind:ty),*) => {$(
        impl HasSpec for $kind {
            fn spec_json(&self) -> serde_json::Value {
                serde_json::to_value(&self.spec).unwrap_or_default()
            }
        }
    )*};
}
has_spec!(Pipeline, Run, RunConfiguration, RunSchedule, Experiment, Provider);

#[tokio::test]
async fn every_crd_is_established_and_every_version_served() {
    let env = env().await;
    let client = env.client().await.unwrap();
    let crds = kfp_core::resources::crd::all().unwrap();
    assert_eq!(crds.len(), 6);
    for crd in &crds {
        for version in &crd.spec.versions {
            let resources = client
                .list_api_group_resources(&format!("{GROUP}/{}", version.name))
                .await
                .unwrap_or_else(|e| panic!("{GROUP}/{} is not served: {e}", version.name));
            let served = resources
                .resources
                .iter()
                .find(|r| r.name == crd.spec.names.plural);
            let served =
                served.unwrap_or_else(|| panic!("{} missing in {}", crd.spec.names.plural, version.name));
            assert_eq!(
                served.short_names, crd.spec.names.short_names,
                "short names of {}",
                crd.spec.names.kind
            );
            assert_eq!(served.categories.as_deref(), Some(&["kfp".to_string()][..]));
            assert!(
                resources
                    .resources
                    .iter()
                    .any(|r| r.name == format!("{}/status", crd.spec.names.plural))
            );
        }
    }
}

#[tokio::test]
async fn every_v1beta1_fixture_round_trips_through_the_typed_api() {
    let (client, ns) = client_and_namespace().await;
    round_trip::<Provider>(&client, &ns, "provider-stub.yaml").await;
    round_trip::<Pipeline>(&client, &ns, "pipeline-stub.yaml").await;
    round_trip::<Pipeline>(&client, &ns, "pipeline-tfx.yaml").await;
    round_trip::<Experiment>(&client, &ns, "experiment.yaml").await;
    round_trip::<Run>(&client, &ns, "run.yaml").await;
    round_trip::<RunSchedule>(&client, &ns, "runschedule.yaml").await;
    round_trip::<RunConfiguration>(&client, &ns, "runconfiguration-stub.yaml").await;
    round_trip::<RunConfiguration>(&client, &ns, "runconfiguration-dependency.yaml").await;
}

/// `kubectl get mlp` asks for a Table; its columns are the CRD's printer columns.
#[tokio::test]
async fn printer_columns_are_served_as_a_table() {
    let (client, ns) = client_and_namespace().await;
    round_trip::<Pipeline>(&client, &ns, "pipeline-stub.yaml").await;
    let api: Api<Pipeline> = Api::namespaced(client.clone(), &ns);
    let status = Status {
        provider: ProviderAndId {
            name: NamespacedName::new("kfp-operator-system", "stub"),
            id: "p-1".into(),
        },
        version: "latest-abc123".into(),
        observed_generation: 1,
        conditions: vec![kfp_core::reconcile::synchronized_condition(
            kfp_core::values::SynchronizationState::Succeeded,
            "",
            1,
            &k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH),
        )],
    };
    api.patch_status(
        "stub-pipeline",
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({ "status": status })),
    )
    .await
    .unwrap();

    let request = http::Request::get(format!("/apis/{GROUP}/v1beta1/namespaces/{ns}/pipelines"))
        .header("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io")
        .body(Vec::new())
        .unwrap();
    let table: serde_json::Value =
        serde_json::from_str(&client.request_text(request).await.unwrap()).unwrap();
    let columns: Vec<&str> = table["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    // Custom columns replace the default ones (no Age), exactly as with the Go operator's CRDs.
    assert_eq!(columns, ["Name", "Provider", "SynchronizationState", "Version"]);
    let row = &table["rows"][0]["cells"];
    assert_eq!(row[0], "stub-pipeline");
    assert_eq!(row[1], "kfp-operator-system/stub");
    assert_eq!(row[2], "Succeeded");
    assert_eq!(row[3], "latest-abc123");
}

#[tokio::test]
async fn status_subresource_and_spec_are_written_separately() {
    let (client, ns) = client_and_namespace().await;
    round_trip::<Experiment>(&client, &ns, "experiment.yaml").await;
    let api: Api<Experiment> = Api::namespaced(client, &ns);
    let name = "penguin-experiment";

    // A status write leaves spec alone, even if the patch carries a spec.
    api.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(
            serde_json::json!({ "spec": { "description": "changed" }, "status": { "version": "v1" } }),
        ),
    )
    .await
    .unwrap();
    let read = api.get(name).await.unwrap();
    assert_eq!(read.spec.description, "An experiment for the penguin pipeline");
    assert_eq!(read.status.as_ref().map(|s| s.version.as_str()), Some("v1"));

    // A spec write leaves status alone, even if the patch carries a status.
    api.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({ "spec": { "description": "new" }, "status": { "version": "v2" } })),
    )
    .await
    .unwrap();
    let read = api.get(name).await.unwrap();
    assert_eq!(read.spec.description, "new");
    assert_eq!(read.status.as_ref().map(|s| s.version.as_str()), Some("v1"));
    assert_eq!(
        read.metadata.generation,
        Some(2),
        "a spec change bumps the generation"
    );
}

/// Creates a raw object and returns the API server's refusal message.
async fn refusal<K: Resource<DynamicType = ()>>(
    client: &Client,
    ns: &str,
    object: serde_json::Value,
) -> String {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &ApiResource::erase::<K>(&()));
    let object: DynamicObject = serde_json::from_value(object).unwrap();
    match api.create(&PostParams::default(), &object).await {
        Ok(created) => panic!("the API server accepted an invalid object: {created:?}"),
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 422, "{status:?}");
            status.message
        }
        Err(other) => panic!("unexpected error: {other}"),
    }
}

#[tokio::test]
async fn schema_rejects_malformed_objects_naming_the_field() {
    let (client, ns) = client_and_namespace().await;
    let pipeline = |spec: serde_json::Value| {
        serde_json::json!({"apiVersion": "pipelines.kubeflow.org/v1beta1", "kind": "Pipeline",
            "metadata": {"name": "p"}, "spec": spec})
    };
    let run = |spec: serde_json::Value| {
        serde_json::json!({"apiVersion": "pipelines.kubeflow.org/v1beta1", "kind": "Run",
            "metadata": {"name": "r"}, "spec": spec})
    };

    let msg = refusal::<Pipeline>(
        &client,
        &ns,
        pipeline(serde_json::json!({"provider": "no-namespace", "image": "i", "framework": {"name": "stub", "parameters": {}}})),
    )
    .await;
    assert!(
        msg.contains("spec.provider") && msg.contains("no-namespace"),
        "{msg}"
    );

    let msg = refusal::<Pipeline>(
        &client,
        &ns,
        pipeline(serde_json::json!({"provider": "a/b", "framework": {"name": "stub", "parameters": {}}})),
    )
    .await;
    assert!(
        msg.contains("spec.image") && msg.contains("Required value"),
        "{msg}"
    );

    let msg = refusal::<Run>(
        &client,
        &ns,
        run(serde_json::json!({"provider": "a/b", "pipeline": "bad name:v1"})),
    )
    .await;
    assert!(
        msg.contains("spec.pipeline") && msg.contains("bad name:v1"),
        "{msg}"
    );

    let msg = refusal::<Run>(
        &client,
        &ns,
        run(serde_json::json!({"provider": "a/b", "artifacts": [{"name": "m", "path": "no-artifact-part"}]})),
    )
    .await;
    assert!(
        msg.contains("spec.artifacts[0].path") && msg.contains("no-artifact-part"),
        "{msg}"
    );

    let msg = refusal::<RunConfiguration>(
        &client,
        &ns,
        serde_json::json!({"apiVersion": "pipelines.kubeflow.org/v1beta1", "kind": "RunConfiguration",
            "metadata": {"name": "rc"},
            "spec": {"run": {"provider": "a/b"}, "triggers": {"onChange": ["pipeline", "sometimes"]}}}),
    )
    .await;
    assert!(
        msg.contains("spec.triggers.onChange[1]") && msg.contains("sometimes"),
        "{msg}"
    );
    assert!(
        msg.contains("\"pipeline\"") && msg.contains("\"runSpec\""),
        "lists the allowed values: {msg}"
    );
}

/// The Go operator's docs wrote `patch:`; the real field is `payload`, and the CRD's own rule says so
/// (docs/decisions/0015-go-schema-compatibility.md).
#[tokio::test]
async fn decision_17_provider_patch_field_is_refused_naming_payload() {
    let (client, ns) = client_and_namespace().await;
    let msg = refusal::<Provider>(
        &client,
        &ns,
        serde_json::json!({"apiVersion": "pipelines.kubeflow.org/v1beta1", "kind": "Provider",
            "metadata": {"name": "prv"},
            "spec": {"serviceImage": "i", "serviceAccount": "sa", "pipelineRootStorage": "gs://b",
                     "frameworks": [{"name": "tfx", "image": "t", "patches": [{"type": "json", "patch": "[]"}]}]}}),
    )
    .await;
    assert!(
        msg.contains("spec.frameworks[0].patches[0]")
            && msg.contains("patch is not a field of a framework patch: rename it to payload"),
        "{msg}"
    );
}

/// The admission rules the CRDs carry as CEL validations and list types hold with no webhook installed (this
/// binary's control plane has none): the API server alone refuses these.
#[tokio::test]
async fn cel_rules_hold_without_the_webhook() {
    let (client, ns) = client_and_namespace().await;
    let parameter = serde_json::json!({"name": "x", "value": "1",
        "valueFrom": {"runConfigurationRef": {"name": "base", "outputArtifact": "a"}}});
    let msg = refusal::<Run>(
        &client,
        &ns,
        serde_json::json!({"apiVersion": "pipelines.kubeflow.org/v1beta1", "kind": "Run",
            "metadata": {"name": "both"}, "spec": {"provider": "a/b", "parameters": [parameter]}}),
    )
    .await;
    assert!(
        msg.contains("spec.parameters[0]") && msg.contains("only one of value or valueFrom can be set"),
        "{msg}"
    );
    let msg = refusal::<RunConfiguration>(
        &client,
        &ns,
        serde_json::json!({"apiVersion": "pipelines.kubeflow.org/v1beta1", "kind": "RunConfiguration",
            "metadata": {"name": "both"}, "spec": {"run": {"provider": "a/b", "parameters": [parameter]}}}),
    )
    .await;
    assert!(
        msg.contains("spec.run.parameters[0]") && msg.contains("only one of value or valueFrom can be set"),
        "{msg}"
    );
    for (field, value) in [("onChange", "runSpec"), ("runConfigurations", "ns/base")] {
        let msg = refusal::<RunConfiguration>(
            &client,
            &ns,
            serde_json::json!({"apiVersion": "pipelines.kubeflow.org/v1beta1", "kind": "RunConfiguration",
                "metadata": {"name": "dup"}, "spec": {"run": {"provider": "a/b"}, "triggers": {field: [value, value]}}}),
        )
        .await;
        assert!(
            msg.contains(&format!("spec.triggers.{field}[1]: Duplicate value: \"{value}\"")),
            "{msg}"
        );
    }
    let msg = refusal::<Provider>(
        &client,
        &ns,
        serde_json::json!({"apiVersion": "pipelines.kubeflow.org/v1beta1", "kind": "Provider",
            "metadata": {"name": "prv"},
            "spec": {"serviceImage": "i", "serviceAccount": "sa", "pipelineRootStorage": "gs://b",
                     "podTemplateEnv": [{"name": "ok", "value": "1"}, {"name": "PipelineRootStorage", "value": "x"}]}}),
    )
    .await;
    assert!(
        msg.contains("spec.podTemplateEnv[1]")
            && msg.contains("the name PipelineRootStorage is reserved by the operator"),
        "{msg}"
    );

    // Run spec immutability is a transition rule: metadata may change, spec may not.
    let runs: Api<Run> = Api::namespaced(client.clone(), &ns);
    let run: Run = serde_json::from_value(serde_json::json!({"apiVersion": "pipelines.kubeflow.org/v1beta1",
        "kind": "Run", "metadata": {"name": "fixed"}, "spec": {"provider": "a/b", "pipeline": "p"}}))
    .unwrap();
    runs.create(&PostParams::default(), &run).await.unwrap();
    runs.patch(
        "fixed",
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"metadata": {"labels": {"team": "ml"}}})),
    )
    .await
    .unwrap();
    let error = runs
        .patch(
            "fixed",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"pipeline": "q"}})),
        )
        .await
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("the spec of a Run is immutable; create a new Run instead"),
        "{error}"
    );
}
