//! Argo Workflows' real CRDs (full schemas) on the real API server: the objects the operator's Argo
//! executor writes are accepted as the operator writes them.

// Test code: helpers outside #[test] functions may fail loudly too.

use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kfp_testenv::{ApplyOptions, TestEnv, apply_yaml, wait_for};
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::json;

const TIMEOUT: Duration = Duration::from_secs(30);

fn argo(kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("argoproj.io", "v1alpha1", kind), plural)
}

async fn env_with_argo() -> &'static TestEnv {
    let env = TestEnv::shared().await.unwrap();
    // Every test installs them: the first one creates them, the others apply the same thing again.
    let names = env.install_argo_crds().await.unwrap();
    assert_eq!(names, ["workflows.argoproj.io", "workflowtemplates.argoproj.io"]);
    env
}

/// A Workflow as the operator's Argo executor creates it for a pipeline operation.
fn pipeline_workflow(namespace: &str) -> DynamicObject {
    let definition = json!({"name": "my-pipeline", "image": "registry.example/pipelines/my-pipeline:1.0"});
    serde_json::from_value(json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {
            "generateName": "pipeline-my-pipeline-",
            "namespace": namespace,
            "labels": {
                "pipelines.kubeflow.org/owner.kind": "pipeline",
                "pipelines.kubeflow.org/owner.name": "my-pipeline",
                "pipelines.kubeflow.org/owner.namespace": namespace,
            },
        },
        "spec": {
            "workflowTemplateRef": {"name": "create-compiled"},
            "arguments": {"parameters": [
                {"name": "resource-kind", "value": "Pipeline"},
                {"name": "resource-definition", "value": definition.to_string()},
                {"name": "provider-name", "value": "kfp"},
                {"name": "provider-service-url", "value": "http://provider-kfp.kfp-operator.svc:8080"},
                {"name": "pipeline-framework-image", "value": "registry.example/kfp-compiler:1.0"},
            ]},
        },
    }))
    .unwrap()
}

#[tokio::test]
async fn argo_crds_install_and_become_established() {
    let env = env_with_argo().await;
    let crds: Api<CustomResourceDefinition> = Api::all(env.client().await.unwrap());
    for name in ["workflows.argoproj.io", "workflowtemplates.argoproj.io"] {
        let crd = crds.get(name).await.unwrap();
        let conditions = crd.status.unwrap().conditions.unwrap();
        assert!(
            conditions
                .iter()
                .any(|c| c.type_ == "Established" && c.status == "True"),
            "{conditions:?}"
        );
        // The full schema, not the minimal one that preserves unknown fields everywhere.
        let schema = crd.spec.versions[0]
            .schema
            .as_ref()
            .unwrap()
            .open_api_v3_schema
            .as_ref()
            .unwrap();
        assert!(
            schema.properties.as_ref().unwrap()["spec"].properties.is_some(),
            "{name} has no spec schema"
        );
    }
}

#[tokio::test]
async fn a_pipeline_workflow_and_its_succeeded_status_are_accepted_by_argos_schema() {
    let env = env_with_argo().await;
    let ns = env.namespace().await.unwrap();
    let client = env.client().await.unwrap();
    let workflows: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), ns.name(), &argo("Workflow", "workflows"));

    let created = workflows
        .create(&PostParams::default(), &pipeline_workflow(ns.name()))
        .await
        .unwrap();
    let name = created.metadata.name.clone().unwrap();
    assert!(name.starts_with("pipeline-my-pipeline-"), "{name}");
    // Nothing was pruned: every field is in Argo's schema.
    let stored = workflows.get(&name).await.unwrap();
    assert_eq!(
        stored.data["spec"]["workflowTemplateRef"]["name"],
        "create-compiled"
    );
    let parameters = stored.data["spec"]["arguments"]["parameters"].as_array().unwrap();
    let names: Vec<&str> = parameters.iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "resource-kind",
            "resource-definition",
            "provider-name",
            "provider-service-url",
            "pipeline-framework-image"
        ]
    );
    let definition: serde_json::Value =
        serde_json::from_str(parameters[1]["value"].as_str().unwrap()).unwrap();
    assert_eq!(definition["name"], "my-pipeline");
    let labels = stored.metadata.labels.as_ref().unwrap();
    assert_eq!(labels["pipelines.kubeflow.org/owner.kind"], "pipeline");
    assert_eq!(labels["pipelines.kubeflow.org/owner.namespace"], ns.name());

    // Argo's CRD has no status subresource (`subresources: {}`): status is written with the object.
    let crd = Api::<CustomResourceDefinition>::all(client.clone())
        .get("workflows.argoproj.io")
        .await
        .unwrap();
    let has_status_subresource = crd.spec.versions[0]
        .subresources
        .as_ref()
        .is_some_and(|s| s.status.is_some());
    let status = json!({"status": {
        "phase": "Succeeded",
        "nodes": {name.as_str(): {
            "id": name, "name": name, "type": "Pod", "phase": "Succeeded",
            "outputs": {"parameters": [{"name": "provider-output", "value": "{\"id\":\"x\"}"}]},
        }},
    }});
    let params = PatchParams::default();
    if has_status_subresource {
        workflows
            .patch_status(&name, &params, &Patch::Merge(&status))
            .await
            .unwrap();
    } else {
        workflows
            .patch(&name, &params, &Patch::Merge(&status))
            .await
            .unwrap();
    }
    let done = wait_for("the workflow status to read Succeeded", TIMEOUT, || async {
        let wf = workflows.get(&name).await?;
        Ok::<_, kube::Error>((wf.data["status"]["phase"] == "Succeeded").then_some(wf))
    })
    .await
    .unwrap();
    assert_eq!(
        done.data["status"]["nodes"][&name]["outputs"]["parameters"],
        json!([{"name": "provider-output", "value": "{\"id\":\"x\"}"}])
    );
}

#[tokio::test]
async fn argos_schema_is_enforced() {
    let env = env_with_argo().await;
    let ns = env.namespace().await.unwrap();
    let workflows: Api<DynamicObject> = Api::namespaced_with(
        env.client().await.unwrap(),
        ns.name(),
        &argo("Workflow", "workflows"),
    );
    let created = workflows
        .create(&PostParams::default(), &pipeline_workflow(ns.name()))
        .await
        .unwrap();
    let name = created.metadata.name.unwrap();

    // A node status without the required `id`, `name` and `type` is refused.
    let incomplete = json!({"status": {"nodes": {name.as_str(): {"phase": "Succeeded"}}}});
    match workflows
        .patch(&name, &PatchParams::default(), &Patch::Merge(&incomplete))
        .await
    {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 422, "{status:?}"),
        other => panic!("expected 422 Unprocessable Entity, got {other:?}"),
    }
    // Parameters must be a list.
    let mut wrong = pipeline_workflow(ns.name());
    wrong.data["spec"]["arguments"]["parameters"] = json!("resource-kind=Pipeline");
    match workflows.create(&PostParams::default(), &wrong).await {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 422, "{status:?}"),
        other => panic!("expected 422 Unprocessable Entity, got {other:?}"),
    }
}

#[tokio::test]
async fn a_workflow_template_is_accepted() {
    let env = env_with_argo().await;
    let ns = env.namespace().await.unwrap();
    let client = env.client().await.unwrap();
    let yaml = r#"
apiVersion: argoproj.io/v1alpha1
kind: WorkflowTemplate
metadata:
  name: create-compiled
spec:
  entrypoint: main
  arguments:
    parameters:
    - name: resource-kind
    - name: resource-definition
    - name: provider-name
    - name: provider-service-url
    - name: pipeline-framework-image
  templates:
  - name: main
    inputs:
      parameters:
      - name: provider-name
    outputs:
      parameters:
      - name: provider-output
        valueFrom:
          path: /tmp/provider-output.json
    container:
      image: "{{workflow.parameters.pipeline-framework-image}}"
      command: [sh, -c]
      args: ["echo '{}' > /tmp/provider-output.json"]
"#;
    let applied = apply_yaml(
        &client,
        yaml,
        &ApplyOptions::in_namespace(ns.name()).field_manager("kfp-operator"),
    )
    .await
    .unwrap();
    assert_eq!(applied.len(), 1);
    let templates: Api<DynamicObject> =
        Api::namespaced_with(client, ns.name(), &argo("WorkflowTemplate", "workflowtemplates"));
    let stored = templates.get("create-compiled").await.unwrap();
    assert_eq!(
        stored.data["spec"]["templates"][0]["outputs"]["parameters"][0]["valueFrom"]["path"],
        "/tmp/provider-output.json"
    );
    assert_eq!(
        stored.data["spec"]["arguments"]["parameters"]
            .as_array()
            .unwrap()
            .len(),
        5
    );
}
