//! `kfp-operator graph`: the dependency graph of the shared fixtures folder (Mermaid and DOT) and of a namespace
//! on a real API server, read through a kubeconfig as a user would run it.

use crate::support;

use std::process::{Command, Output};

use kfp_core::resources::v1beta1::RunConfiguration;
use kube::Api;

fn graph(args: &[&str], kubeconfig: Option<&std::path::Path>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kfp-operator"));
    command.arg("graph").args(args);
    match kubeconfig {
        Some(path) => command.env("KUBECONFIG", path),
        None => command.env("KUBECONFIG", "/nonexistent/kubeconfig"),
    };
    command.output().expect("kfp-operator runs")
}

fn stdout_of(output: &Output) -> String {
    assert!(
        output.status.success(),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn the_fixtures_graph_shows_the_cross_namespace_dependency() {
    let fixtures = support::fixtures_dir();
    let mermaid = stdout_of(&graph(&["--manifests", fixtures.to_str().unwrap()], None));
    assert!(mermaid.starts_with("flowchart LR\n"), "{mermaid}");
    for line in [
        "  subgraph ns0[\"base-namespace\"]",
        "    n1(\"RunConfiguration penguin-pipeline-examples-rc<br/>schedule 0 * * * *\")",
        "    n8(\"RunConfiguration penguin-pipeline-training-rc\")",
        "  n1 -.->|\"triggers on success\"| n8",
        "  n1 -->|\"artifact examples to examples_location\"| n8",
        "  n3 -->|\"runs, new versions trigger\"| n4",
        "  class n0,n7 missing",
    ] {
        assert!(
            mermaid.lines().any(|l| l == line),
            "missing {line:?} in:\n{mermaid}"
        );
    }
    // The documented picture is this output.
    let doc = std::fs::read_to_string(support::repo_root().join("docs/dependency-graph.md")).unwrap();
    assert!(
        doc.contains(&format!("```mermaid\n{mermaid}```")),
        "docs/dependency-graph.md must show the current output of `kfp-operator graph --manifests fixtures`:\n{mermaid}"
    );

    let dot = stdout_of(&graph(
        &["--manifests", fixtures.to_str().unwrap(), "--format", "dot"],
        None,
    ));
    assert!(dot.starts_with("digraph kfp {"), "{dot}");
    assert!(
        dot.contains("  n1 -> n8 [label=\"triggers on success\", style=dashed];"),
        "{dot}"
    );

    let only = stdout_of(&graph(
        &[
            "--manifests",
            fixtures.to_str().unwrap(),
            "--namespace",
            "dependant-namespace",
        ],
        None,
    ));
    assert!(only.contains("subgraph ns0[\"base-namespace\"]"), "{only}");
    assert!(
        only.contains("RunConfiguration penguin-pipeline-examples-rc<br/>not found"),
        "{only}"
    );
    assert!(!only.contains("stub-runconfiguration"), "{only}");
}

#[test]
fn bad_input_gets_a_clear_error() {
    let fixtures = support::fixtures_dir();
    let output = graph(
        &["--manifests", fixtures.to_str().unwrap(), "--format", "svg"],
        None,
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("unknown graph format \"svg\"; expected mermaid or dot"),
        "{stderr}"
    );

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("old.yaml"),
        "apiVersion: pipelines.kubeflow.org/v1alpha6\nkind: RunConfiguration\nmetadata: {name: old}\nspec: {}\n",
    )
    .unwrap();
    let output = graph(&["--manifests", dir.path().to_str().unwrap()], None);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("apiVersion is pipelines.kubeflow.org/v1alpha6; the graph reads pipelines.kubeflow.org/v1beta1 manifests"),
        "{stderr}"
    );

    let output = graph(&[], None);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no Kubernetes API server to talk to"), "{stderr}");
}

#[tokio::test]
async fn the_cluster_graph_reads_a_namespace_through_the_kubeconfig() {
    let env = support::env().await;
    let (client, namespace) = support::client_and_namespace().await;
    let api: Api<RunConfiguration> = Api::namespaced(client, &namespace);
    for yaml in [
        format!(
            "apiVersion: pipelines.kubeflow.org/v1beta1
kind: RunConfiguration
metadata: {{name: features, namespace: {namespace}}}
spec:
  run:
    provider: {namespace}/stub
    pipeline: feature-pipeline
    artifacts: [{{name: table, path: 'Export:table'}}]
  triggers: {{schedules: [{{cronExpression: '0 3 * * *'}}]}}
"
        ),
        format!(
            "apiVersion: pipelines.kubeflow.org/v1beta1
kind: RunConfiguration
metadata: {{name: training, namespace: {namespace}}}
spec:
  run:
    provider: {namespace}/stub
    pipeline: training-pipeline
    parameters:
    - name: features
      valueFrom: {{runConfigurationRef: {{name: features, outputArtifact: table}}}}
  triggers: {{runConfigurations: [features]}}
"
        ),
    ] {
        let rc: RunConfiguration = serde_saphyr::from_str(&yaml).unwrap();
        api.create(&Default::default(), &rc).await.unwrap();
    }
    let ns = namespace.clone();
    let kubeconfig = env.kubeconfig_path().to_path_buf();
    let output = tokio::task::spawn_blocking(move || graph(&["--namespace", &ns], Some(&kubeconfig)))
        .await
        .unwrap();
    let mermaid = stdout_of(&output);
    assert_eq!(mermaid.matches("subgraph").count(), 1, "{mermaid}");
    for line in [
        "    n2(\"RunConfiguration features<br/>schedule 0 3 * * *\")".to_string(),
        "    n3(\"RunConfiguration training\")".to_string(),
        "  n2 -.->|\"triggers on success\"| n3".to_string(),
        "  n2 -->|\"artifact table to features\"| n3".to_string(),
    ] {
        assert!(
            mermaid.lines().any(|l| l == line),
            "missing {line:?} in:\n{mermaid}"
        );
    }
}
