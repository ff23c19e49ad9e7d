//! The version of a manifest of any served version: what `kfp-operator version` prints.

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{
    HashAlgorithm, experiment_version, pipeline_version, run_schedule_version, run_spec_version, run_version,
};
use crate::conversion::{self, ConversionConfig};
use crate::resources::GROUP;
use crate::resources::v1beta1::{Experiment, Pipeline, Run, RunConfiguration, RunSchedule};

/// The namespace of a manifest without one, as `kubectl apply` would place it.
const DEFAULT_NAMESPACE: &str = "default";

/// One object's version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestVersion {
    /// `Pipeline`, `Run`, `RunConfiguration`, `RunSchedule` or `Experiment`.
    pub kind: String,
    /// `metadata.namespace`, `default` when absent.
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
    /// The version the algorithm gives the object's spec: `status.version` of a Pipeline, Run, RunSchedule or
    /// Experiment, `status.triggers.runSpec.version` of a RunConfiguration.
    pub version: String,
}

/// The version of `object`, an object of the API group in any served version (converted to v1beta1 with
/// `config`). `Ok(None)` for what has no version: objects of other groups and Providers. A Run's version includes
/// its `status.dependencies.pipeline.version` as the object holds it (empty when it has no status), as Go's
/// `ComputeVersion` does. The error says why the object cannot be read.
pub fn of_manifest(
    object: Value,
    algorithm: HashAlgorithm,
    config: &ConversionConfig,
) -> Result<Option<ManifestVersion>, String> {
    let api_version = object
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if api_version.split('/').next() != Some(GROUP) {
        return Ok(None);
    }
    let kind = object
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if kind == "Provider" {
        return Ok(None);
    }
    let hub_version = format!("{GROUP}/v1beta1");
    let hub = conversion::convert(object, &hub_version, config).map_err(|e| e.to_string())?;
    let (meta, version) = match kind.as_str() {
        "Pipeline" => {
            let p: Pipeline = read(hub)?;
            let version = pipeline_version(&p.spec, algorithm);
            (p.metadata, version)
        }
        "Experiment" => {
            let e: Experiment = read(hub)?;
            let version = experiment_version(&e.spec, algorithm);
            (e.metadata, version)
        }
        "RunSchedule" => {
            let rs: RunSchedule = read(hub)?;
            let version = run_schedule_version(&rs.spec, algorithm);
            (rs.metadata, version)
        }
        "Run" => {
            let r: Run = read(hub)?;
            let observed = r
                .status
                .as_ref()
                .map(|s| s.dependencies.pipeline.version.as_str());
            let version = run_version(&r.spec, observed.unwrap_or_default(), algorithm);
            (r.metadata, version)
        }
        "RunConfiguration" => {
            let rc: RunConfiguration = read(hub)?;
            let version = run_spec_version(&rc.spec.run, algorithm);
            (rc.metadata, version)
        }
        // `convert` refuses kinds outside the group's six.
        other => return Err(format!("kind {other:?} has no version")),
    };
    Ok(Some(ManifestVersion {
        kind,
        namespace: meta
            .namespace
            .filter(|ns| !ns.is_empty())
            .unwrap_or_else(|| DEFAULT_NAMESPACE.to_string()),
        name: meta.name.unwrap_or_default(),
        version,
    }))
}

fn read<K: DeserializeOwned>(hub: Value) -> Result<K, String> {
    serde_json::from_value(hub).map_err(|e| format!("not a valid v1beta1 object: {e}"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn every_served_version_gives_the_hub_version() {
        let config = ConversionConfig::default();
        let v1beta1 = json!({"apiVersion": "pipelines.kubeflow.org/v1beta1", "kind": "Experiment",
            "metadata": {"name": "e"}, "spec": {"provider": "ns/p", "description": "d"}});
        let v1alpha5 = json!({"apiVersion": "pipelines.kubeflow.org/v1alpha5", "kind": "Experiment",
            "metadata": {"name": "e"}, "spec": {"description": "d"}});
        let expected = ManifestVersion {
            kind: "Experiment".into(),
            namespace: "default".into(),
            name: "e".into(),
            version: super::super::experiment_version(
                &serde_json::from_value(json!({"provider": "ns/p", "description": "d"})).unwrap(),
                HashAlgorithm::Head,
            ),
        };
        for object in [v1beta1, v1alpha5] {
            assert_eq!(
                of_manifest(object, HashAlgorithm::Head, &config),
                Ok(Some(expected.clone()))
            );
        }
    }

    #[test]
    fn providers_and_other_groups_have_none_and_bad_objects_say_why() {
        let config = ConversionConfig::default();
        let provider = json!({"apiVersion": "pipelines.kubeflow.org/v1beta1", "kind": "Provider",
            "metadata": {"name": "p"}, "spec": {}});
        let config_map = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}});
        for object in [provider, config_map] {
            assert_eq!(of_manifest(object, HashAlgorithm::Head, &config), Ok(None));
        }
        let bad = json!({"apiVersion": "pipelines.kubeflow.org/v1beta1", "kind": "Pipeline",
            "metadata": {"name": "p"}, "spec": {"image": 1}});
        let err = of_manifest(bad, HashAlgorithm::Head, &config).unwrap_err();
        assert!(err.starts_with("not a valid v1beta1 object: "), "{err}");
        let unserved = json!({"apiVersion": "pipelines.kubeflow.org/v1", "kind": "Pipeline"});
        assert!(of_manifest(unserved, HashAlgorithm::Head, &config).is_err());
    }
}
