//! The dependency graph of RunConfigurations: what runs which pipeline, what triggers what, which artifact feeds
//! which parameter, across namespaces. Built from the API objects alone (pure), so `kfp-operator graph` and
//! embedders draw the same picture from a cluster or from a folder of manifests.
//!
//! Nodes are Pipelines, RunConfigurations, and the Runs and RunSchedules users wrote themselves (those a
//! RunConfiguration created are left out: they are how it runs, not part of the design). A reference to an object
//! that is not among the inputs becomes a node marked missing, so a typo or a dependency in a namespace that was
//! not read shows up instead of vanishing. Edges:
//!
//! - [`EdgeKind::Runs`]: a Pipeline to what runs it (`spec.run.pipeline`, `spec.pipeline`, same namespace);
//!   `on_change` when the RunConfiguration starts a run for each new version (`triggers.onChange: [pipeline]`);
//! - [`EdgeKind::Triggers`]: a RunConfiguration to the one it triggers when it succeeds
//!   (`triggers.runConfigurations`);
//! - [`EdgeKind::Artifact`]: a RunConfiguration to the one (or the Run) whose parameter reads its output artifact
//!   (`valueFrom.runConfigurationRef`).
//!
//! [`Graph::to_mermaid`] and [`Graph::to_dot`] render it, one subgraph per namespace, in a stable order.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::{self, Write as _};
use std::str::FromStr;

use kube::ResourceExt;

use crate::resources::labels;
use crate::resources::v1beta1::{
    Conditions, OnChangeType, Pipeline, Run, RunConfiguration, RunSchedule, RunSpec,
};
use crate::values::{NamespacedName, PipelineIdentifier};

/// The namespace of objects and references that name none (as `kubectl` assumes).
pub const DEFAULT_NAMESPACE: &str = "default";

/// The kinds of node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NodeKind {
    /// A Pipeline.
    Pipeline,
    /// A RunConfiguration.
    RunConfiguration,
    /// A Run users created.
    Run,
    /// A RunSchedule users created.
    RunSchedule,
}

impl NodeKind {
    /// The kind's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pipeline => "Pipeline",
            Self::RunConfiguration => "RunConfiguration",
            Self::Run => "Run",
            Self::RunSchedule => "RunSchedule",
        }
    }
}

/// A node's identity: its kind and `namespace/name`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeKey {
    /// The kind.
    pub kind: NodeKind,
    /// The object.
    pub name: NamespacedName,
}

impl NodeKey {
    /// The node of `kind` `name`.
    pub fn new(kind: NodeKind, name: NamespacedName) -> Self {
        Self { kind, name }
    }
}

/// One object in the picture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// False when only referenced: no such object was among the inputs.
    pub exists: bool,
    /// The `Synchronized` condition's reason (`Succeeded`, `Pending`, ...), if the object has a status.
    pub state: Option<String>,
    /// Extra lines for the label: schedules and onChange triggers of a RunConfiguration, a Run's or
    /// RunSchedule's schedule.
    pub details: Vec<String>,
}

/// What an edge means.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EdgeKind {
    /// The pipeline is run by the target; `version` when it is pinned, `on_change` when each new version starts
    /// a run.
    Runs {
        /// The pinned version; empty when floating.
        version: String,
        /// Whether each new version starts a run (`triggers.onChange: [pipeline]`).
        on_change: bool,
    },
    /// The source's succeeded runs trigger the target.
    Triggers,
    /// The target's parameter `parameter` reads the source's output artifact `artifact`.
    Artifact {
        /// The source's output artifact.
        artifact: String,
        /// The target's parameter.
        parameter: String,
        /// Whether the parameter is optional.
        optional: bool,
    },
}

impl EdgeKind {
    /// The edge's label.
    pub fn label(&self) -> String {
        match self {
            Self::Runs { version, on_change } => {
                let mut label = String::from("runs");
                if !version.is_empty() {
                    let _ = write!(label, " version {version}");
                }
                if *on_change {
                    label.push_str(", new versions trigger");
                }
                label
            }
            Self::Triggers => "triggers on success".to_string(),
            Self::Artifact {
                artifact,
                parameter,
                optional,
            } => {
                let optional = if *optional { " (optional)" } else { "" };
                format!("artifact {artifact} to {parameter}{optional}")
            }
        }
    }
}

/// A directed edge.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Edge {
    /// The source.
    pub from: NodeKey,
    /// The target.
    pub to: NodeKey,
    /// What the edge means.
    pub kind: EdgeKind,
}

/// The objects a graph is built from (v1beta1). Objects without a namespace are taken to be in
/// [`DEFAULT_NAMESPACE`].
#[derive(Debug, Clone, Default)]
pub struct Resources {
    /// Pipelines.
    pub pipelines: Vec<Pipeline>,
    /// RunConfigurations.
    pub run_configurations: Vec<RunConfiguration>,
    /// Runs.
    pub runs: Vec<Run>,
    /// RunSchedules.
    pub run_schedules: Vec<RunSchedule>,
}

/// The dependency graph: nodes by key, edges in a stable order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Graph {
    /// Every node by key.
    pub nodes: BTreeMap<NodeKey, Node>,
    /// Every edge, in a stable order.
    pub edges: BTreeSet<Edge>,
}

/// Output formats of [`Graph::render`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Format {
    /// A Mermaid `flowchart` (renders in GitHub, GitLab and most Markdown viewers).
    #[default]
    Mermaid,
    /// Graphviz DOT (`dot -Tsvg`).
    Dot,
}

impl FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "mermaid" => Ok(Self::Mermaid),
            "dot" | "graphviz" => Ok(Self::Dot),
            other => Err(format!("unknown graph format {other:?}; expected mermaid or dot")),
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Mermaid => "mermaid",
            Self::Dot => "dot",
        })
    }
}

fn namespaced(namespace: Option<String>, name: String) -> NamespacedName {
    NamespacedName::new(
        namespace
            .filter(|ns| !ns.is_empty())
            .unwrap_or_else(|| DEFAULT_NAMESPACE.to_string()),
        name,
    )
}

fn state_of<S: Conditions>(status: Option<&S>) -> Option<String> {
    status
        .and_then(Conditions::synchronized)
        .map(|c| c.reason.clone())
        .filter(|reason| !reason.is_empty())
}

/// Whether a RunConfiguration created the object (a Run labelled with it, or a RunSchedule it controls).
fn created_by_run_configuration(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> bool {
    let labelled = meta
        .labels
        .as_ref()
        .is_some_and(|l| l.contains_key(labels::RUN_CONFIGURATION_NAME));
    let owned = meta.owner_references.iter().flatten().any(|owner| {
        owner.kind == "RunConfiguration" && owner.api_version.starts_with("pipelines.kubeflow.org/")
    });
    labelled || owned
}

impl Graph {
    /// Builds the graph of `resources`.
    pub fn build(resources: &Resources) -> Self {
        let mut graph = Self::default();
        for pipeline in &resources.pipelines {
            let key = NodeKey::new(
                NodeKind::Pipeline,
                namespaced(pipeline.namespace(), pipeline.name_any()),
            );
            graph.add(key, state_of(pipeline.status.as_ref()), Vec::new());
        }
        for rc in &resources.run_configurations {
            let key = NodeKey::new(
                NodeKind::RunConfiguration,
                namespaced(rc.namespace(), rc.name_any()),
            );
            let triggers = &rc.spec.triggers;
            let mut details: Vec<String> = triggers
                .schedules
                .iter()
                .map(|s| format!("schedule {}", s.cron_expression))
                .collect();
            if triggers.on_change.contains(&OnChangeType::RunSpec) {
                details.push("onChange runSpec".to_string());
            }
            graph.add(key.clone(), state_of(rc.status.as_ref()), details);
            let on_change = triggers.on_change.contains(&OnChangeType::Pipeline);
            graph.run_spec_edges(&key, &rc.spec.run, on_change);
            for dependency in &triggers.run_configurations {
                let from = NodeKey::new(
                    NodeKind::RunConfiguration,
                    dependency.with_default_namespace(&key.name.namespace),
                );
                graph.connect(from, key.clone(), EdgeKind::Triggers);
            }
        }
        for run in resources
            .runs
            .iter()
            .filter(|r| !created_by_run_configuration(&r.metadata))
        {
            let key = NodeKey::new(
                NodeKind::Run,
                namespaced(run.namespace(), run_name(&run.metadata)),
            );
            let state = run.status.as_ref().and_then(|s| {
                let completion = s.completion_state.as_ref().map(|c| format!("{c:?}"));
                completion.or_else(|| state_of(Some(s)))
            });
            graph.add(key.clone(), state, Vec::new());
            graph.run_spec_edges(&key, &run.spec, false);
        }
        for schedule in resources
            .run_schedules
            .iter()
            .filter(|s| !created_by_run_configuration(&s.metadata))
        {
            let key = NodeKey::new(
                NodeKind::RunSchedule,
                namespaced(schedule.namespace(), run_name(&schedule.metadata)),
            );
            let details = vec![format!("schedule {}", schedule.spec.schedule.cron_expression)];
            graph.add(key.clone(), state_of(schedule.status.as_ref()), details);
            graph.pipeline_edge(&key, &schedule.spec.pipeline, false);
        }
        graph
    }

    fn add(&mut self, key: NodeKey, state: Option<String>, details: Vec<String>) {
        self.nodes.insert(
            key,
            Node {
                exists: true,
                state,
                details,
            },
        );
    }

    /// Adds an edge, and its ends as missing nodes when they are not (yet) known.
    fn connect(&mut self, from: NodeKey, to: NodeKey, kind: EdgeKind) {
        for key in [&from, &to] {
            self.nodes.entry(key.clone()).or_insert(Node {
                exists: false,
                state: None,
                details: Vec::new(),
            });
        }
        self.edges.insert(Edge { from, to, kind });
    }

    fn pipeline_edge(&mut self, key: &NodeKey, pipeline: &PipelineIdentifier, on_change: bool) {
        if pipeline.name.is_empty() {
            return;
        }
        let from = NodeKey::new(
            NodeKind::Pipeline,
            NamespacedName::new(key.name.namespace.clone(), pipeline.name.clone()),
        );
        let kind = EdgeKind::Runs {
            version: pipeline.version.clone(),
            on_change,
        };
        self.connect(from, key.clone(), kind);
    }

    fn run_spec_edges(&mut self, key: &NodeKey, spec: &RunSpec, on_change: bool) {
        self.pipeline_edge(key, &spec.pipeline, on_change);
        for parameter in &spec.parameters {
            let Some(value_from) = &parameter.value_from else {
                continue;
            };
            let reference = &value_from.run_configuration_ref;
            let from = NodeKey::new(
                NodeKind::RunConfiguration,
                reference.name.with_default_namespace(&key.name.namespace),
            );
            let kind = EdgeKind::Artifact {
                artifact: reference.output_artifact.clone(),
                parameter: parameter.name.clone(),
                optional: reference.optional,
            };
            self.connect(from, key.clone(), kind);
        }
    }

    /// The graph in `format`.
    pub fn render(&self, format: Format) -> String {
        match format {
            Format::Mermaid => self.to_mermaid(),
            Format::Dot => self.to_dot(),
        }
    }

    /// Node ids (`n0`, `n1`, ... in drawing order: namespace, kind, name): names hold characters neither format
    /// takes in an id.
    fn ids(&self) -> BTreeMap<&NodeKey, String> {
        self.by_namespace()
            .into_values()
            .flatten()
            .enumerate()
            .map(|(i, (key, _))| (key, format!("n{i}")))
            .collect()
    }

    /// Nodes grouped by namespace, in key order within each.
    fn by_namespace(&self) -> BTreeMap<&str, Vec<(&NodeKey, &Node)>> {
        let mut groups: BTreeMap<&str, Vec<(&NodeKey, &Node)>> = BTreeMap::new();
        for (key, node) in &self.nodes {
            groups
                .entry(key.name.namespace.as_str())
                .or_default()
                .push((key, node));
        }
        groups
    }

    /// A Mermaid `flowchart LR`: a subgraph per namespace; Pipelines as subroutines, RunConfigurations rounded,
    /// Runs as stadiums, RunSchedules as hexagons; missing objects dashed; trigger edges dotted.
    pub fn to_mermaid(&self) -> String {
        let ids = self.ids();
        let mut out = String::from("flowchart LR\n");
        for (index, (namespace, nodes)) in self.by_namespace().into_iter().enumerate() {
            let _ = writeln!(out, "  subgraph ns{index}[\"{}\"]", mermaid_text(namespace));
            for (key, node) in nodes {
                let label = mermaid_text(&node_label(key, node)).replace('\n', "<br/>");
                let (open, close) = match key.kind {
                    NodeKind::Pipeline => ("[[", "]]"),
                    NodeKind::RunConfiguration => ("(", ")"),
                    NodeKind::Run => ("([", "])"),
                    NodeKind::RunSchedule => ("{{", "}}"),
                };
                let _ = writeln!(out, "    {}{open}\"{label}\"{close}", ids[key]);
            }
            out.push_str("  end\n");
        }
        for edge in &self.edges {
            let arrow = if edge.kind == EdgeKind::Triggers {
                "-.->"
            } else {
                "-->"
            };
            let _ = writeln!(
                out,
                "  {} {arrow}|\"{}\"| {}",
                ids[&edge.from],
                mermaid_text(&edge.kind.label()),
                ids[&edge.to]
            );
        }
        let missing: Vec<&str> = self
            .nodes
            .iter()
            .filter(|(_, node)| !node.exists)
            .map(|(key, _)| ids[key].as_str())
            .collect();
        if !missing.is_empty() {
            out.push_str("  classDef missing stroke-dasharray: 5 5,color:#888\n");
            let _ = writeln!(out, "  class {} missing", missing.join(","));
        }
        out
    }

    /// Graphviz DOT: a cluster per namespace, shapes and styles as in [`Self::to_mermaid`].
    pub fn to_dot(&self) -> String {
        let ids = self.ids();
        let mut out = String::from(
            "digraph kfp {\n  rankdir=LR;\n  node [fontname=\"Helvetica\"];\n  edge [fontname=\"Helvetica\", fontsize=10];\n",
        );
        for (index, (namespace, nodes)) in self.by_namespace().into_iter().enumerate() {
            let _ = writeln!(out, "  subgraph cluster_{index} {{");
            let _ = writeln!(out, "    label=\"{}\";", dot_text(namespace));
            for (key, node) in nodes {
                let shape = match key.kind {
                    NodeKind::Pipeline => "box",
                    NodeKind::RunConfiguration => "box, style=rounded",
                    NodeKind::Run => "oval",
                    NodeKind::RunSchedule => "hexagon",
                };
                let missing = if node.exists {
                    ""
                } else {
                    ", style=dashed, fontcolor=gray40"
                };
                let _ = writeln!(
                    out,
                    "    {} [label=\"{}\", shape={shape}{missing}];",
                    ids[key],
                    dot_text(&node_label(key, node))
                );
            }
            out.push_str("  }\n");
        }
        for edge in &self.edges {
            let style = if edge.kind == EdgeKind::Triggers {
                ", style=dashed"
            } else {
                ""
            };
            let _ = writeln!(
                out,
                "  {} -> {} [label=\"{}\"{style}];",
                ids[&edge.from],
                ids[&edge.to],
                dot_text(&edge.kind.label())
            );
        }
        out.push_str("}\n");
        out
    }
}

/// The name of a Run or RunSchedule: its name, else its `generateName` followed by `*`.
fn run_name(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> String {
    match (&meta.name, &meta.generate_name) {
        (Some(name), _) if !name.is_empty() => name.clone(),
        (_, Some(prefix)) => format!("{prefix}*"),
        _ => String::new(),
    }
}

/// `Kind name`, then the state (or `not found`), then the details, one per line.
fn node_label(key: &NodeKey, node: &Node) -> String {
    let mut label = format!("{} {}", key.kind.as_str(), key.name.name);
    match (&node.state, node.exists) {
        (_, false) => label.push_str("\nnot found"),
        (Some(state), true) => {
            let _ = write!(label, "\n{state}");
        }
        (None, true) => {}
    }
    for detail in &node.details {
        let _ = write!(label, "\n{detail}");
    }
    label
}

/// Text inside a quoted Mermaid label: `"` and the characters Mermaid reads as markup become entities.
fn mermaid_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' => out.push_str("#quot;"),
            '<' => out.push_str("#lt;"),
            '>' => out.push_str("#gt;"),
            '#' => out.push_str("#35;"),
            _ => out.push(c),
        }
    }
    out
}

/// Text inside a quoted DOT string: `\` and `"` escaped, line breaks as `\n`.
fn dot_text(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests;
