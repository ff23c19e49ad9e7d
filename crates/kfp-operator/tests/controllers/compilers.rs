//! The Python compilers (compilers/README.md) as the operator uses them: their pytest suite runs inside cargo test, and
//! the example KFP SDK pipeline is compiled by the real `kfpsdk` compiler through the direct executor's
//! [`LocalCompiler`] and uploaded by the Kubeflow Pipelines provider to its v2beta1 API fake, both on its own and
//! through the operator reconciling a Pipeline on kfp-testenv.

// Test code: failing loudly with the reason is the point.

use crate::support;

use std::process::Command;

use kfp_core::compiler::{CompileError, CompileRequest, Compiler};
use kfp_core::definitions::PipelineDefinitionWrapper;
use kfp_core::executor::OperationDefinition;
use kfp_core::provider::Provider;
use kfp_core::reconcile::definition::pipeline_definition;
use kfp_core::resources::v1beta1::{Pipeline, Provider as ProviderResource};
use kfp_core::values::{NamespacedName, SynchronizationState};
use kfp_operator::compiler::local::LocalCompiler;
use kfp_providers::kfp::fake::FakeKfp;
use kfp_providers::kfp::pipeline::LABEL_KEYS;
use kfp_providers::kfp::{KfpConfig, KfpProvider};
use serde_json::{Value, json};
use support::python::python_env;
use support::{RunningOperator, repo_root, wait_for_state};

#[test]
fn the_compilers_pytest_suite_passes() {
    let venv = python_env();
    let output = Command::new(venv.join("bin/python3"))
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", "compilers/tests"])
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env_remove("PYTHONPATH")
        .current_dir(repo_root())
        .output()
        .expect("pytest runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "pytest failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let summary = stdout.lines().last().unwrap_or_default();
    assert!(
        summary.contains(" passed") && !summary.contains("failed") && !summary.contains("skipped"),
        "{stdout}"
    );
}

/// The local compiler with the real kfpsdk compiler of the repository, in the compilers' virtualenv.
fn kfpsdk_compiler() -> LocalCompiler {
    LocalCompiler::new().with_python_compiler(
        "kfpsdk",
        repo_root().join("compilers/kfpsdk/compile.sh"),
        &python_env(),
    )
}

/// A Pipeline of the example `add_pipeline` and a Provider with the kfpsdk framework (and a merge patch that adds
/// compile-time env, as platform teams do), in `namespace`; the pipeline's code is found through its `env`.
fn example_resources(namespace: &str, provider_type: &str, kfp_url: &str) -> (Pipeline, ProviderResource) {
    let pipelines = repo_root().join("examples/pipelines");
    let pipeline: Pipeline = serde_saphyr::from_str(&format!(
        "apiVersion: pipelines.kubeflow.org/v1beta1
kind: Pipeline
metadata: {{name: add-pipeline, namespace: {namespace}}}
spec:
  provider: {namespace}/kfp
  image: registry.example/getting-started:v1
  env:
  - {{name: PYTHONPATH, value: {pipelines}}}
  framework:
    name: KFPSDK
    parameters: {{pipeline: getting_started.pipeline.add_pipeline}}
",
        pipelines = pipelines.display()
    ))
    .unwrap();
    let provider: ProviderResource = serde_saphyr::from_str(&format!(
        "apiVersion: pipelines.kubeflow.org/v1beta1
kind: Provider
metadata:
  name: kfp
  namespace: {namespace}
  annotations: {{pipelines.kubeflow.org/provider-type: {provider_type}}}
spec:
  serviceImage: unused-in-direct-mode
  serviceAccount: default
  pipelineRootStorage: gs://bucket/pipelines
  parameters: {{restKfpApiUrl: '{kfp_url}'}}
  frameworks:
  - name: kfpsdk
    image: kfp-operator/kfpsdk-compiler:latest
    patches:
    - {{type: merge, payload: '{{\"env\": [{{\"name\": \"PYTHONPATH\", \"value\": \"{pipelines}\"}}, {{\"name\": \"TEAM\", \"value\": \"ml\"}}]}}'}}
  allowedNamespaces: [{namespace}]
",
        pipelines = pipelines.display()
    ))
    .unwrap();
    (pipeline, provider)
}

fn request_for(pipeline: &Pipeline, provider: &ProviderResource) -> CompileRequest {
    let OperationDefinition::Pipeline {
        definition,
        framework_image,
    } = pipeline_definition(pipeline, provider, "v1-abc123").unwrap()
    else {
        panic!("a pipeline definition")
    };
    CompileRequest {
        framework_image,
        pipeline_image: pipeline.spec.image.clone(),
        pipeline_definition: definition,
    }
}

/// What the KFP provider must have uploaded for the example: the IR the kfpsdk compiler made, named `ns-name`,
/// components in the Pipeline's image, with the operator's label inputs added.
fn assert_uploaded_example(spec: &Value, namespace: &str) {
    assert_eq!(spec["pipelineInfo"]["name"], format!("{namespace}-add-pipeline"));
    assert_eq!(spec["sdkVersion"], "kfp-2.17.3");
    let inputs = spec["root"]["inputDefinitions"]["parameters"]
        .as_object()
        .unwrap();
    for parameter in ["a", "b", "c"] {
        assert_eq!(inputs[parameter]["parameterType"], "NUMBER_DOUBLE", "{spec:#}");
    }
    for key in LABEL_KEYS {
        assert_eq!(inputs[key]["parameterType"], "STRING", "{key} in {spec:#}");
    }
    let executors = spec["deploymentSpec"]["executors"].as_object().unwrap();
    assert_eq!(executors.len(), 2);
    for executor in executors.values() {
        assert_eq!(
            executor["container"]["image"], "registry.example/getting-started:v1",
            "{spec:#}"
        );
    }
}

#[tokio::test]
async fn the_example_pipeline_compiles_to_ir_that_the_kfp_provider_uploads() {
    let fake = FakeKfp::start().await.unwrap();
    let (pipeline, provider) = example_resources("team-a", "kfp", fake.url());
    let request = request_for(&pipeline, &provider);
    assert_eq!(
        request.pipeline_definition["env"][1],
        json!({"name": "TEAM", "value": "ml"})
    );

    let compiled = kfpsdk_compiler().compile(&request).await.unwrap();
    assert_eq!(compiled["pipelineInfo"]["name"], "team-a-add-pipeline");

    let mut config = KfpConfig::new(NamespacedName::new("team-a", "kfp"));
    config.rest_url = fake.url().to_string();
    let kfp = KfpProvider::new(config).unwrap();
    let wrapper = PipelineDefinitionWrapper {
        pipeline_definition: request.pipeline_definition.clone(),
        compiled_pipeline: compiled,
    };
    let id = kfp.create_pipeline(&wrapper).await.unwrap();
    let uploaded = fake.pipelines();
    assert_eq!(uploaded.len(), 1);
    assert_eq!(uploaded[0].pipeline_id, id);
    assert_eq!(uploaded[0].display_name, "team-a-add-pipeline");
    let versions = fake.pipeline_versions(&id);
    let version = versions
        .iter()
        .find(|v| v.display_name == "v1-abc123")
        .unwrap_or_else(|| panic!("a version named after the pipeline version: {versions:#?}"));
    assert_uploaded_example(&version.pipeline_spec, "team-a");
    // The provider really works with the upload: a run of that version can be created.
    fake.add_experiment("Default", "");
    let run = serde_json::from_value(json!({
        "name": "team-a/add-run", "version": "r1", "pipelineName": "team-a/add-pipeline",
        "pipelineVersion": "v1-abc123", "runConfigurationName": "", "experimentName": "",
        "parameters": {"a": "4", "b": "5", "c": "6"},
        "triggerIndicator": {"type": "", "source": "", "sourceNamespace": ""}
    }))
    .unwrap();
    kfp.create_run(&run).await.unwrap();
    assert_eq!(fake.runs().len(), 1);
    // The float inputs are sent as numbers: KFP refuses strings for them (docs/providers/kubeflow-pipelines.md).
    let parameters = &fake.runs()[0]["runtime_config"]["parameters"];
    assert_eq!(
        (&parameters["a"], &parameters["b"], &parameters["c"]),
        (&json!(4.0), &json!(5.0), &json!(6.0))
    );
    assert_eq!(
        fake.runs()[0]["pipeline_version_reference"]["pipeline_version_id"],
        version.pipeline_version_id.as_str()
    );
}

#[tokio::test]
async fn compile_failures_of_the_kfpsdk_compiler_are_permanent_and_name_the_key() {
    let (mut pipeline, provider) = example_resources("team-a", "kfp", "http://127.0.0.1:9");
    pipeline.spec.framework.parameters.insert(
        "pipeline".into(),
        json!("getting_started.pipeline.no_such_pipeline"),
    );
    let err = kfpsdk_compiler()
        .compile(&request_for(&pipeline, &provider))
        .await
        .unwrap_err();
    let CompileError::Invalid(message) = err else {
        panic!("a permanent failure: {err:?}")
    };
    assert!(
        message.ends_with(
            "error: module \"getting_started.pipeline\" has no \"no_such_pipeline\" (framework.parameters.pipeline \
             is \"getting_started.pipeline.no_such_pipeline\")"
        ),
        "{message}"
    );
}

#[tokio::test]
async fn the_operator_reconciles_a_kfpsdk_pipeline_into_kubeflow_pipelines() {
    let fake = FakeKfp::start().await.unwrap();
    let (client, namespace) = support::client_and_namespace().await;
    let (pipeline, provider) = example_resources(&namespace, "kfp", fake.url());
    let providers: kube::Api<ProviderResource> = kube::Api::namespaced(client.clone(), &namespace);
    providers.create(&Default::default(), &provider).await.unwrap();
    let pipelines: kube::Api<Pipeline> = kube::Api::namespaced(client.clone(), &namespace);
    pipelines.create(&Default::default(), &pipeline).await.unwrap();

    let operator = RunningOperator::start(support::executors::registry_context(
        client,
        support::config_for(&namespace),
        kfpsdk_compiler(),
    ));

    let reconciled = wait_for_state(&pipelines, "add-pipeline", SynchronizationState::Succeeded, |p| {
        p.status.as_ref()
    })
    .await;
    operator.stop().await;
    let status = reconciled.status.unwrap();
    let uploaded = fake.pipelines();
    assert_eq!(uploaded.len(), 1, "{uploaded:#?}");
    assert_eq!(status.provider.id, uploaded[0].pipeline_id);
    assert_eq!(uploaded[0].display_name, format!("{namespace}-add-pipeline"));
    let versions = fake.pipeline_versions(&status.provider.id);
    let version = versions
        .iter()
        .find(|v| v.display_name == status.version)
        .unwrap_or_else(|| panic!("version {} uploaded: {versions:#?}", status.version));
    assert_uploaded_example(&version.pipeline_spec, &namespace);
}
