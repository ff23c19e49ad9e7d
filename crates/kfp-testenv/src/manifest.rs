//! Reading Kubernetes objects from multi-document YAML.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::{Error, Result};

/// One object read from a manifest file.
#[derive(Clone, Debug)]
pub struct ManifestObject {
    /// The file it came from.
    pub path: PathBuf,
    /// Its position among the file's documents, from 0.
    pub index: usize,
    /// The object.
    pub value: Value,
}

impl ManifestObject {
    /// `kind name` (and namespace when set), e.g. `Workflow demo/hello`, for messages.
    pub fn describe(&self) -> String {
        let kind = self.value["kind"].as_str().unwrap_or("object");
        let name = self.value["metadata"]["name"].as_str().unwrap_or("(no name)");
        match self.value["metadata"]["namespace"].as_str() {
            Some(ns) => format!("{kind} {ns}/{name}"),
            None => format!("{kind} {name}"),
        }
    }

    /// `file (document n)`, for messages.
    pub fn location(&self) -> String {
        format!("{} (document {})", self.path.display(), self.index + 1)
    }
}

/// Parses multi-document YAML (or JSON, a subset of YAML); empty documents are skipped. `origin` names
/// the source in messages.
pub fn parse_yaml(yaml: &str, origin: &Path) -> Result<Vec<ManifestObject>> {
    let mut options = serde_saphyr::Options::default();
    // Manifests in tests are trusted and can be large (Argo's full Workflow CRD is 3 MB of YAML).
    options.budget = None;
    let docs: Vec<Value> =
        serde_saphyr::from_multiple_with_options(yaml, options).map_err(|e| Error::Yaml {
            path: origin.to_path_buf(),
            message: e.to_string(),
        })?;
    let mut objects = Vec::new();
    for (index, value) in docs.into_iter().enumerate() {
        match value {
            Value::Null => continue,
            Value::Object(_) => objects.push(ManifestObject {
                path: origin.to_path_buf(),
                index,
                value,
            }),
            _ => {
                return Err(Error::Yaml {
                    path: origin.to_path_buf(),
                    message: format!("document {} is not a Kubernetes object (a mapping)", index + 1),
                });
            }
        }
    }
    Ok(objects)
}

/// Reads every object of the YAML files `paths`; a folder stands for its `*.yaml`, `*.yml` and `*.json`
/// files (not recursive), in name order.
pub fn read_manifests<P: AsRef<Path>>(paths: &[P]) -> Result<Vec<ManifestObject>> {
    let mut objects = Vec::new();
    for path in paths {
        for file in manifest_files(path.as_ref())? {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| Error::io(format!("reading {}", file.display()), e))?;
            objects.extend(parse_yaml(&text, &file)?);
        }
    }
    Ok(objects)
}

fn manifest_files(path: &Path) -> Result<Vec<PathBuf>> {
    if !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let entries = std::fs::read_dir(path).map_err(|e| Error::io(format!("listing {}", path.display()), e))?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(format!("listing {}", path.display()), e))?;
        let file = entry.path();
        let is_manifest = file
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| matches!(e, "yaml" | "yml" | "json"));
        if is_manifest && file.is_file() {
            files.push(file);
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(Error::Invalid(format!(
            "{} holds no .yaml, .yml or .json files",
            path.display()
        )));
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_document_yaml_skips_empty_documents() {
        let yaml = "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n---\n---\n\
                    apiVersion: v1\nkind: Secret\nmetadata:\n  name: b\n  namespace: team-a\n";
        let objects = parse_yaml(yaml, Path::new("inline.yaml")).unwrap();
        let described: Vec<String> = objects.iter().map(ManifestObject::describe).collect();
        assert_eq!(described, ["ConfigMap a", "Secret team-a/b"]);
    }

    #[test]
    fn a_scalar_document_is_refused_with_its_position() {
        let err = parse_yaml("a: 1\n---\njust text\n", Path::new("x.yaml")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "x.yaml: document 2 is not a Kubernetes object (a mapping)"
        );
    }
}
