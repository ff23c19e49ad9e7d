//! `kfp-operator version`: the version each Pipeline, Run, RunConfiguration, RunSchedule and Experiment of some
//! manifests has under one of the Go operator's hash algorithms ([`kfp_core::version::of_manifest`]), to compare
//! with the `status.version` a cluster holds before and after a migration.

use std::path::PathBuf;

use kfp_core::conversion::ConversionConfig;
use kfp_core::version::{HashAlgorithm, ManifestVersion, of_manifest};
use serde_json::Value;

/// Why the versions could not be computed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VersionsError {
    /// A file could not be read or parsed.
    #[error("cannot read the manifests: {0}")]
    Manifests(#[from] kfp_testenv::Error),
    /// An object cannot be read as its kind.
    #[error("{what}: {reason}")]
    Manifest {
        /// The object, its file and document.
        what: String,
        /// Why.
        reason: String,
    },
}

/// Every object of the group in `paths` (files or folders, multi-document YAML or JSON, `kind: List` and
/// `<Kind>List` items included), in order, with its version. Providers have no version and are left out, as are
/// objects of other groups.
pub fn compute(
    paths: &[PathBuf],
    algorithm: HashAlgorithm,
    config: &ConversionConfig,
) -> Result<Vec<ManifestVersion>, VersionsError> {
    let mut versions = Vec::new();
    for object in kfp_testenv::read_manifests(paths)? {
        let at = format!("{} (document {})", object.path.display(), object.index + 1);
        for (what, value) in objects(object.value, &at) {
            let version = of_manifest(value, algorithm, config)
                .map_err(|reason| VersionsError::Manifest { what, reason })?;
            versions.extend(version);
        }
    }
    Ok(versions)
}

/// `KIND NAMESPACE/NAME VERSION`, one line each.
pub fn render(versions: &[ManifestVersion]) -> String {
    versions
        .iter()
        .map(|v| format!("{} {}/{} {}\n", v.kind, v.namespace, v.name, v.version))
        .collect()
}

/// The objects of one document with a description for messages: a list's items (which may omit `apiVersion`
/// and `kind` in a `<Kind>List`), else the document itself.
fn objects(document: Value, at: &str) -> Vec<(String, Value)> {
    let kind = document["kind"].as_str().unwrap_or_default().to_string();
    let Some(item_kind) = kind.strip_suffix("List") else {
        return vec![(describe(&document, at), document)];
    };
    let api_version = document["apiVersion"].clone();
    let Value::Object(mut list) = document else {
        return Vec::new();
    };
    let Some(Value::Array(items)) = list.remove("items") else {
        return Vec::new();
    };
    items
        .into_iter()
        .enumerate()
        .map(|(i, mut item)| {
            if let Value::Object(fields) = &mut item
                && !item_kind.is_empty()
            {
                fields
                    .entry("kind")
                    .or_insert_with(|| Value::String(item_kind.to_string()));
                fields.entry("apiVersion").or_insert_with(|| api_version.clone());
            }
            let what = describe(&item, &format!("{at}, item {}", i + 1));
            (what, item)
        })
        .collect()
}

fn describe(object: &Value, at: &str) -> String {
    let kind = object["kind"].as_str().unwrap_or("object");
    let name = object["metadata"]["name"].as_str().unwrap_or("(no name)");
    match object["metadata"]["namespace"].as_str() {
        Some(namespace) => format!("{kind} {namespace}/{name} in {at}"),
        None => format!("{kind} {name} in {at}"),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn lists_give_their_items_with_the_list_kind_and_version() {
        let list = json!({"apiVersion": "pipelines.kubeflow.org/v1beta1", "kind": "ExperimentList",
            "items": [{"metadata": {"name": "a", "namespace": "n"}, "spec": {"provider": "ns/p"}}]});
        let items = objects(list, "f.yaml (document 1)");
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].0, "Experiment n/a in f.yaml (document 1), item 1");
        assert_eq!(items[0].1["kind"], "Experiment");
        assert_eq!(items[0].1["apiVersion"], "pipelines.kubeflow.org/v1beta1");
        let generic = json!({"apiVersion": "v1", "kind": "List", "items": [
            {"apiVersion": "pipelines.kubeflow.org/v1beta1", "kind": "Pipeline", "metadata": {"name": "p"}}]});
        let items = objects(generic, "f.yaml (document 1)");
        assert_eq!(items[0].1["kind"], "Pipeline");
        assert_eq!(items[0].0, "Pipeline p in f.yaml (document 1), item 1");
    }
}
