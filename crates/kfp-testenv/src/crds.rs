//! Installing CustomResourceDefinitions and waiting until they can be used.

use std::path::Path;
use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};

use crate::error::{Error, Result};
use crate::manifest::{ManifestObject, read_manifests};
use crate::wait::wait_for;

/// The field manager this crate applies CRDs with.
pub const CRD_FIELD_MANAGER: &str = "kfp-testenv";

/// How long [`install_crds`] waits for each CRD to be established and served.
pub const CRD_READY_TIMEOUT: Duration = Duration::from_secs(60);

/// Installs every CRD in the YAML files or folders `paths` (multi-document YAML; a folder stands for its
/// `*.yaml`/`*.yml`/`*.json` files) with server-side apply, then waits until each is `Established` and
/// its resource answers a list request. Returns the CRD names.
///
/// Server-side apply keeps large CRDs (Argo's full schemas) within the size limits and makes
/// installing the same CRDs again, e.g. from several tests, a no-op. Documents that are not
/// `CustomResourceDefinition`s are refused.
pub async fn install_crds<P: AsRef<Path>>(client: &Client, paths: &[P]) -> Result<Vec<String>> {
    let objects = read_manifests(paths)?;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let params = PatchParams::apply(CRD_FIELD_MANAGER).force();
    let mut names = Vec::new();
    for object in &objects {
        let name = crd_name(object)?;
        crds.patch(&name, &params, &Patch::Apply(&object.value))
            .await
            .map_err(|e| Error::kube(format!("installing CRD {name} from {}", object.location()), e))?;
        names.push(name);
    }
    for name in &names {
        wait_until_served(client, name, CRD_READY_TIMEOUT).await?;
    }
    Ok(names)
}

fn crd_name(object: &ManifestObject) -> Result<String> {
    let kind = object.value["kind"].as_str();
    let api_version = object.value["apiVersion"].as_str();
    if kind != Some("CustomResourceDefinition") || api_version != Some("apiextensions.k8s.io/v1") {
        return Err(Error::Invalid(format!(
            "{} is {}, not an apiextensions.k8s.io/v1 CustomResourceDefinition",
            object.location(),
            object.describe()
        )));
    }
    object.value["metadata"]["name"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| Error::Invalid(format!("{} has no metadata.name", object.location())))
}

/// Waits until CRD `name` has the condition `Established=True` and a list of its storage version
/// succeeds (discovery and the handler lag a little behind the condition).
pub async fn wait_until_served(client: &Client, name: &str, timeout: Duration) -> Result<()> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd = wait_for(format!("CRD {name} to be Established"), timeout, || async {
        let crd = crds.get(name).await?;
        let established = crd
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Established" && c.status == "True"));
        Ok::<_, kube::Error>(established.then_some(crd))
    })
    .await?;

    let version = crd
        .spec
        .versions
        .iter()
        .find(|v| v.served)
        .map(|v| v.name.clone())
        .ok_or_else(|| Error::Invalid(format!("CRD {name} serves no version")))?;
    let gvk = GroupVersionKind::gvk(&crd.spec.group, &version, &crd.spec.names.kind);
    let resource = ApiResource::from_gvk_with_plural(&gvk, &crd.spec.names.plural);
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
    wait_for(format!("CRD {name} to be served"), timeout, || async {
        api.list(&ListParams::default().limit(1)).await.map(|_| Some(()))
    })
    .await
}
