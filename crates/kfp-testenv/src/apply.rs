//! Server-side apply of manifests, any kind, through discovery.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use kube::Client;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::discovery::{self, ApiCapabilities, Scope};

use crate::error::{Error, Result};
use crate::manifest::{ManifestObject, parse_yaml, read_manifests};
use crate::wait::wait_for;

/// How [`apply_yaml_file`] applies objects.
#[derive(Clone, Debug)]
pub struct ApplyOptions {
    /// The field manager of the server-side apply (default `kfp-testenv`).
    pub field_manager: String,
    /// Take over fields owned by other managers instead of failing with a conflict (default `true`).
    pub force: bool,
    /// The namespace for namespaced objects that name none. An object naming another namespace is
    /// refused, as `kubectl apply -n` does. `None`: namespaced objects must name theirs.
    pub namespace: Option<String>,
    /// Server-side dry run (`kubectl apply --server-side --dry-run=server`): the API server validates and
    /// admits each object as it would store it, and stores nothing (default `false`).
    pub dry_run: bool,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions {
            field_manager: "kfp-testenv".to_string(),
            force: true,
            namespace: None,
            dry_run: false,
        }
    }
}

impl ApplyOptions {
    /// Default options with `namespace` for objects that name none.
    pub fn in_namespace(namespace: impl Into<String>) -> Self {
        ApplyOptions {
            namespace: Some(namespace.into()),
            ..ApplyOptions::default()
        }
    }

    /// These options as a server-side dry run: validated and admitted, not stored.
    pub fn dry_run(mut self) -> Self {
        self.dry_run = true;
        self
    }

    /// These options with another field manager.
    pub fn field_manager(mut self, manager: impl Into<String>) -> Self {
        self.field_manager = manager.into();
        self
    }
}

/// Applies every object of a multi-document YAML file with server-side apply and returns them as the
/// API server stored them. The resource of each `apiVersion`/`kind` is found through discovery, so
/// custom resources work once their CRD is served.
pub async fn apply_yaml_file(
    client: &Client,
    path: &Path,
    options: &ApplyOptions,
) -> Result<Vec<DynamicObject>> {
    apply_objects(client, read_manifests(&[path])?, options).await
}

/// Like [`apply_yaml_file`], for YAML text (e.g. written inline in a test).
pub async fn apply_yaml(client: &Client, yaml: &str, options: &ApplyOptions) -> Result<Vec<DynamicObject>> {
    apply_objects(client, parse_yaml(yaml, Path::new("<inline YAML>"))?, options).await
}

async fn apply_objects(
    client: &Client,
    objects: Vec<ManifestObject>,
    options: &ApplyOptions,
) -> Result<Vec<DynamicObject>> {
    let mut params = PatchParams::apply(&options.field_manager);
    params.force = options.force;
    params.dry_run = options.dry_run;
    let mut resources: HashMap<GroupVersionKind, (ApiResource, ApiCapabilities)> = HashMap::new();
    let mut applied = Vec::new();
    for mut object in objects {
        let what = format!("{} from {}", object.describe(), object.location());
        let gvk = gvk_of(&object)?;
        let (resource, capabilities) = match resources.get(&gvk) {
            Some(found) => found.clone(),
            None => {
                let found = resolve(client, &gvk).await?;
                resources.insert(gvk.clone(), found.clone());
                found
            }
        };
        let name = object.value["metadata"]["name"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| Error::Invalid(format!("{what}: metadata.name is required for apply")))?;
        let api: Api<DynamicObject> = match capabilities.scope {
            Scope::Cluster => Api::all_with(client.clone(), &resource),
            Scope::Namespaced => {
                let namespace = namespace_for(&mut object, options, &what)?;
                Api::namespaced_with(client.clone(), &namespace, &resource)
            }
        };
        let stored = api
            .patch(&name, &params, &Patch::Apply(&object.value))
            .await
            .map_err(|e| Error::kube(format!("applying {what}"), e))?;
        applied.push(stored);
    }
    Ok(applied)
}

fn gvk_of(object: &ManifestObject) -> Result<GroupVersionKind> {
    let api_version = object.value["apiVersion"].as_str();
    let kind = object.value["kind"].as_str();
    let (Some(api_version), Some(kind)) = (api_version, kind) else {
        return Err(Error::Invalid(format!(
            "{} needs apiVersion and kind",
            object.location()
        )));
    };
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    Ok(GroupVersionKind::gvk(group, version, kind))
}

/// Finds the resource of `gvk`, allowing a few seconds for a CRD that was just installed.
async fn resolve(client: &Client, gvk: &GroupVersionKind) -> Result<(ApiResource, ApiCapabilities)> {
    let what = format!(
        "discovery to serve kind {} of {}",
        gvk.kind,
        if gvk.group.is_empty() {
            gvk.version.clone()
        } else {
            format!("{}/{}", gvk.group, gvk.version)
        }
    );
    wait_for(what, Duration::from_secs(10), || async {
        discovery::pinned_kind(client, gvk).await.map(Some)
    })
    .await
}

fn namespace_for(object: &mut ManifestObject, options: &ApplyOptions, what: &str) -> Result<String> {
    let own = object.value["metadata"]["namespace"].as_str().map(str::to_string);
    match (own, &options.namespace) {
        (Some(own), Some(given)) if &own != given => Err(Error::Invalid(format!(
            "{what}: the object names namespace {own}, but it is applied into namespace {given}"
        ))),
        (Some(own), _) => Ok(own),
        (None, Some(given)) => {
            object.value["metadata"]["namespace"] = serde_json::Value::String(given.clone());
            Ok(given.clone())
        }
        (None, None) => Err(Error::Invalid(format!(
            "{what}: a namespaced object needs metadata.namespace or ApplyOptions::namespace"
        ))),
    }
}
