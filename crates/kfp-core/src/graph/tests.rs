use super::*;

/// The shared dependency fixture, plus a Pipeline, a standalone Run and one a RunConfiguration created.
const MANIFESTS: &str = r#"
apiVersion: pipelines.kubeflow.org/v1beta1
kind: RunConfiguration
metadata: {name: penguin-pipeline-examples-rc, namespace: base-namespace}
spec:
  run:
    provider: kfp-operator-system/stub
    pipeline: penguin-pipeline-examples
    artifacts: [{name: examples, path: "CsvExampleGen:examples"}]
  triggers:
    schedules: [{cronExpression: "0 * * * *"}]
    onChange: [pipeline]
status:
  conditions:
  - {type: Synchronized, status: "True", reason: Succeeded, message: "", lastTransitionTime: "2026-01-01T00:00:00Z"}
---
apiVersion: pipelines.kubeflow.org/v1beta1
kind: RunConfiguration
metadata: {name: penguin-pipeline-training-rc, namespace: dependant-namespace}
spec:
  run:
    provider: kfp-operator-system/stub
    pipeline: penguin-pipeline-training:v2
    parameters:
    - name: examples_location
      valueFrom:
        runConfigurationRef: {name: base-namespace/penguin-pipeline-examples-rc, outputArtifact: examples}
    - name: baseline
      valueFrom:
        runConfigurationRef: {name: baseline-rc, outputArtifact: model, optional: true}
    - {name: epochs, value: "3"}
  triggers:
    runConfigurations: [base-namespace/penguin-pipeline-examples-rc]
    onChange: [runSpec]
---
apiVersion: pipelines.kubeflow.org/v1beta1
kind: Pipeline
metadata: {name: penguin-pipeline-examples, namespace: base-namespace}
spec:
  provider: kfp-operator-system/stub
  image: examples:v1
  framework: {name: tfx, parameters: {components: examples.create_components}}
---
apiVersion: pipelines.kubeflow.org/v1beta1
kind: Run
metadata: {generateName: adhoc-, namespace: dependant-namespace}
spec:
  provider: kfp-operator-system/stub
  pipeline: penguin-pipeline-training
  parameters:
  - name: examples_location
    valueFrom:
      runConfigurationRef: {name: base-namespace/penguin-pipeline-examples-rc, outputArtifact: examples}
---
apiVersion: pipelines.kubeflow.org/v1beta1
kind: Run
metadata:
  name: penguin-pipeline-training-rc-abcde
  namespace: dependant-namespace
  labels: {pipelines.kubeflow.org/runconfiguration.name: penguin-pipeline-training-rc}
spec:
  provider: kfp-operator-system/stub
  pipeline: penguin-pipeline-training
"#;

fn resources(yaml: &str) -> Resources {
    let mut resources = Resources::default();
    let documents: Vec<serde_json::Value> = serde_saphyr::from_multiple(yaml).unwrap();
    for document in documents {
        match document["kind"].as_str().unwrap() {
            "Pipeline" => resources
                .pipelines
                .push(serde_json::from_value(document).unwrap()),
            "RunConfiguration" => resources
                .run_configurations
                .push(serde_json::from_value(document).unwrap()),
            "Run" => resources.runs.push(serde_json::from_value(document).unwrap()),
            "RunSchedule" => resources
                .run_schedules
                .push(serde_json::from_value(document).unwrap()),
            other => panic!("unexpected kind {other}"),
        }
    }
    resources
}

fn key(kind: NodeKind, namespace: &str, name: &str) -> NodeKey {
    NodeKey::new(kind, NamespacedName::new(namespace, name))
}

#[test]
fn edges_follow_pipelines_triggers_and_artifacts_across_namespaces() {
    let graph = Graph::build(&resources(MANIFESTS));
    let examples = key(
        NodeKind::RunConfiguration,
        "base-namespace",
        "penguin-pipeline-examples-rc",
    );
    let training = key(
        NodeKind::RunConfiguration,
        "dependant-namespace",
        "penguin-pipeline-training-rc",
    );
    let adhoc = key(NodeKind::Run, "dependant-namespace", "adhoc-*");
    let edges: Vec<(NodeKey, NodeKey, EdgeKind)> = graph
        .edges
        .iter()
        .map(|e| (e.from.clone(), e.to.clone(), e.kind.clone()))
        .collect();
    let artifact = |parameter: &str, optional: bool, artifact: &str| EdgeKind::Artifact {
        artifact: artifact.into(),
        parameter: parameter.into(),
        optional,
    };
    let expected = [
        (
            key(NodeKind::Pipeline, "base-namespace", "penguin-pipeline-examples"),
            examples.clone(),
            EdgeKind::Runs {
                version: String::new(),
                on_change: true,
            },
        ),
        (examples.clone(), training.clone(), EdgeKind::Triggers),
        (
            examples.clone(),
            training.clone(),
            artifact("examples_location", false, "examples"),
        ),
        (
            examples.clone(),
            adhoc.clone(),
            artifact("examples_location", false, "examples"),
        ),
        (
            key(NodeKind::RunConfiguration, "dependant-namespace", "baseline-rc"),
            training.clone(),
            artifact("baseline", true, "model"),
        ),
        (
            key(
                NodeKind::Pipeline,
                "dependant-namespace",
                "penguin-pipeline-training",
            ),
            training.clone(),
            EdgeKind::Runs {
                version: "v2".into(),
                on_change: false,
            },
        ),
        (
            key(
                NodeKind::Pipeline,
                "dependant-namespace",
                "penguin-pipeline-training",
            ),
            adhoc.clone(),
            EdgeKind::Runs {
                version: String::new(),
                on_change: false,
            },
        ),
    ];
    for edge in &expected {
        assert!(edges.contains(edge), "missing {edge:?} in {edges:#?}");
    }
    assert_eq!(edges.len(), expected.len(), "{edges:#?}");
    // The Run the training RunConfiguration created is not drawn.
    assert!(
        graph
            .nodes
            .keys()
            .all(|k| k.name.name != "penguin-pipeline-training-rc-abcde")
    );
}

#[test]
fn referenced_objects_that_were_not_read_are_missing_nodes() {
    let graph = Graph::build(&resources(MANIFESTS));
    let node = |kind, ns, name| graph.nodes[&key(kind, ns, name)].clone();
    assert!(node(NodeKind::Pipeline, "base-namespace", "penguin-pipeline-examples").exists);
    assert!(
        !node(
            NodeKind::Pipeline,
            "dependant-namespace",
            "penguin-pipeline-training"
        )
        .exists
    );
    assert!(!node(NodeKind::RunConfiguration, "dependant-namespace", "baseline-rc").exists);
    let examples = node(
        NodeKind::RunConfiguration,
        "base-namespace",
        "penguin-pipeline-examples-rc",
    );
    assert_eq!(examples.state.as_deref(), Some("Succeeded"));
    assert_eq!(examples.details, ["schedule 0 * * * *"]);
    let training = node(
        NodeKind::RunConfiguration,
        "dependant-namespace",
        "penguin-pipeline-training-rc",
    );
    assert_eq!(training.state, None);
    assert_eq!(training.details, ["onChange runSpec"]);
}

const SMALL: &str = r#"
apiVersion: pipelines.kubeflow.org/v1beta1
kind: RunConfiguration
metadata: {name: a}
spec:
  run: {provider: ops/kfp, pipeline: "p"}
---
apiVersion: pipelines.kubeflow.org/v1beta1
kind: RunConfiguration
metadata: {name: b, namespace: team}
spec:
  run:
    provider: ops/kfp
    pipeline: "p"
    parameters:
    - name: data
      valueFrom: {runConfigurationRef: {name: default/a, outputArtifact: "out"}}
  triggers: {runConfigurations: [default/a]}
---
apiVersion: pipelines.kubeflow.org/v1beta1
kind: RunSchedule
metadata: {name: nightly, namespace: team}
spec:
  provider: ops/kfp
  pipeline: "p"
  schedule: {cronExpression: "0 0 * * *"}
"#;

#[test]
fn mermaid_output_is_stable_and_escaped() {
    let graph = Graph::build(&resources(SMALL));
    assert_eq!(
        graph.to_mermaid(),
        r#"flowchart LR
  subgraph ns0["default"]
    n0[["Pipeline p<br/>not found"]]
    n1("RunConfiguration a")
  end
  subgraph ns1["team"]
    n2[["Pipeline p<br/>not found"]]
    n3("RunConfiguration b")
    n4{{"RunSchedule nightly<br/>schedule 0 0 * * *"}}
  end
  n0 -->|"runs"| n1
  n2 -->|"runs"| n3
  n2 -->|"runs"| n4
  n1 -.->|"triggers on success"| n3
  n1 -->|"artifact out to data"| n3
  classDef missing stroke-dasharray: 5 5,color:#888
  class n0,n2 missing
"#
    );
    assert_eq!(
        mermaid_text(r#"say "hi" <b> #1"#),
        "say #quot;hi#quot; #lt;b#gt; #35;1"
    );
}

#[test]
fn dot_output_is_stable_and_escaped() {
    let graph = Graph::build(&resources(SMALL));
    let dot = graph.to_dot();
    assert!(dot.starts_with("digraph kfp {\n  rankdir=LR;\n"), "{dot}");
    assert!(
        dot.contains("  subgraph cluster_1 {\n    label=\"team\";\n"),
        "{dot}"
    );
    assert!(
        dot.contains("    n2 [label=\"Pipeline p\\nnot found\", shape=box, style=dashed, fontcolor=gray40];"),
        "{dot}"
    );
    assert!(
        dot.contains("    n3 [label=\"RunConfiguration b\", shape=box, style=rounded];"),
        "{dot}"
    );
    assert!(
        dot.contains("  n1 -> n3 [label=\"triggers on success\", style=dashed];"),
        "{dot}"
    );
    assert!(
        dot.contains("  n1 -> n3 [label=\"artifact out to data\"];"),
        "{dot}"
    );
    assert!(dot.ends_with("}\n"));
    assert_eq!(dot_text("a \"b\" \\ c\nd"), "a \\\"b\\\" \\\\ c\\nd");
    assert_eq!(graph.render(Format::Dot), dot);
}

#[test]
fn formats_parse_ignoring_case() {
    assert_eq!("Mermaid".parse::<Format>(), Ok(Format::Mermaid));
    assert_eq!("DOT".parse::<Format>(), Ok(Format::Dot));
    assert_eq!(
        "svg".parse::<Format>(),
        Err("unknown graph format \"svg\"; expected mermaid or dot".to_string())
    );
}

#[test]
fn an_empty_graph_renders_as_an_empty_chart() {
    let graph = Graph::build(&Resources::default());
    assert_eq!(graph.to_mermaid(), "flowchart LR\n");
    assert!(
        graph
            .to_dot()
            .ends_with("edge [fontname=\"Helvetica\", fontsize=10];\n}\n")
    );
}
