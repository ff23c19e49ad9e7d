//! `kfp-operator graph`: prints the RunConfiguration dependency graph ([`kfp_core::graph`]) of a cluster or of a
//! folder of manifests, as Mermaid or Graphviz DOT.

use std::path::PathBuf;

use kfp_core::graph::{Format, Graph, Resources};
use kfp_core::resources::v1beta1::{Pipeline, Run, RunConfiguration, RunSchedule};
use kube::api::{Api, ListParams};
use kube::{Client, Resource};
use serde::de::DeserializeOwned;

/// The API group whose objects the graph reads.
const GROUP: &str = "pipelines.kubeflow.org";
/// The one version manifests must be written in.
const VERSION: &str = "pipelines.kubeflow.org/v1beta1";

/// Why the graph could not be drawn.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GraphError {
    /// The manifests could not be read.
    #[error("cannot read the manifests: {0}")]
    Manifests(#[from] kfp_testenv::Error),
    /// A manifest is not a v1beta1 object of the API group.
    #[error("{what}: {reason}")]
    Manifest {
        /// The manifest (file and object).
        what: String,
        /// Why it cannot be drawn.
        reason: String,
    },
    /// No API server to read (and no `--manifests`).
    #[error(
        "no Kubernetes API server to talk to (in-cluster config or KUBECONFIG): {0}; pass --manifests to draw a folder of manifests instead"
    )]
    Client(#[source] kube::Error),
    /// Listing objects failed.
    #[error("listing {kind} failed: {source}")]
    List {
        /// The kind.
        kind: &'static str,
        /// The API error.
        #[source]
        source: kube::Error,
    },
}

/// What `kfp-operator graph` draws.
#[derive(Debug, Clone, Default)]
pub struct GraphOptions {
    /// YAML files or folders; empty: read the cluster.
    pub manifests: Vec<PathBuf>,
    /// Only this namespace (references into other namespaces still show, as missing nodes); `None`: all.
    pub namespace: Option<String>,
    /// Mermaid or DOT.
    pub format: Format,
}

/// Reads the objects and renders the graph.
pub async fn render(options: &GraphOptions) -> Result<String, GraphError> {
    let mut resources = if options.manifests.is_empty() {
        let client = Client::try_default().await.map_err(GraphError::Client)?;
        from_cluster(&client, options.namespace.as_deref()).await?
    } else {
        from_manifests(&options.manifests)?
    };
    if let Some(namespace) = &options.namespace {
        keep_namespace(&mut resources, namespace);
    }
    Ok(Graph::build(&resources).render(options.format))
}

fn keep_namespace(resources: &mut Resources, namespace: &str) {
    fn retain<K: Resource>(objects: &mut Vec<K>, namespace: &str) {
        objects.retain(|o| {
            o.meta()
                .namespace
                .as_deref()
                .filter(|ns| !ns.is_empty())
                .unwrap_or(kfp_core::graph::DEFAULT_NAMESPACE)
                == namespace
        });
    }
    retain(&mut resources.pipelines, namespace);
    retain(&mut resources.run_configurations, namespace);
    retain(&mut resources.runs, namespace);
    retain(&mut resources.run_schedules, namespace);
}

/// The Pipelines, RunConfigurations, Runs and RunSchedules of YAML files or folders (other kinds are skipped;
/// objects of this API group in another version than v1beta1 are an error naming them).
pub fn from_manifests(paths: &[PathBuf]) -> Result<Resources, GraphError> {
    let mut resources = Resources::default();
    for object in kfp_testenv::read_manifests(paths)? {
        let api_version = object.value["apiVersion"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let kind = object.value["kind"].as_str().unwrap_or_default().to_string();
        if api_version.split('/').next() != Some(GROUP) {
            continue;
        }
        let what = format!("{} from {}", object.describe(), object.location());
        if api_version != VERSION {
            return Err(GraphError::Manifest {
                what,
                reason: format!(
                    "apiVersion is {api_version}; the graph reads {VERSION} manifests (apply it to a cluster and \
                     run kfp-operator graph without --manifests: the API server converts it)"
                ),
            });
        }
        let value = object.value;
        match kind.as_str() {
            "Pipeline" => resources.pipelines.push(parse(value, &what)?),
            "RunConfiguration" => resources.run_configurations.push(parse(value, &what)?),
            "Run" => resources.runs.push(parse(value, &what)?),
            "RunSchedule" => resources.run_schedules.push(parse(value, &what)?),
            _ => {}
        }
    }
    Ok(resources)
}

fn parse<K: DeserializeOwned>(value: serde_json::Value, what: &str) -> Result<K, GraphError> {
    serde_json::from_value(value).map_err(|e| GraphError::Manifest {
        what: what.to_string(),
        reason: e.to_string(),
    })
}

/// The four kinds as the API server has them, in `namespace` or everywhere.
pub async fn from_cluster(client: &Client, namespace: Option<&str>) -> Result<Resources, GraphError> {
    Ok(Resources {
        pipelines: list::<Pipeline>(client, namespace, "Pipelines").await?,
        run_configurations: list::<RunConfiguration>(client, namespace, "RunConfigurations").await?,
        runs: list::<Run>(client, namespace, "Runs").await?,
        run_schedules: list::<RunSchedule>(client, namespace, "RunSchedules").await?,
    })
}

async fn list<K>(client: &Client, namespace: Option<&str>, kind: &'static str) -> Result<Vec<K>, GraphError>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + DeserializeOwned,
{
    let api: Api<K> = match namespace {
        Some(namespace) => Api::namespaced(client.clone(), namespace),
        None => Api::all(client.clone()),
    };
    api.list(&ListParams::default())
        .await
        .map(|list| list.items)
        .map_err(|source| GraphError::List { kind, source })
}
