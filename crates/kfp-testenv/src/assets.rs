//! Where the control-plane binaries and the Argo CRDs are found.
//!
//! Lookup order for `kube-apiserver` and `etcd`:
//! 1. `$KUBEBUILDER_ASSETS`, a folder holding both (the convention of controller-runtime's envtest,
//!    so a folder made by `setup-envtest` works too);
//! 2. the cache folder that `scripts/test-assets.sh` fills:
//!    `${KFP_TESTENV_CACHE:-$HOME/.cache/kfp-testenv}/v1.35.4/`.
//!
//! The Argo Workflows CRDs are looked up in `$KUBEBUILDER_ASSETS/argo-crds/`, then in
//! `<cache folder>/argo-crds/`.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The Kubernetes version `scripts/test-assets.sh` builds and this crate is tested against.
pub const KUBERNETES_VERSION: &str = "v1.35.4";

/// The Argo Workflows release whose CRDs `scripts/test-assets.sh` copies.
pub const ARGO_WORKFLOWS_VERSION: &str = "v3.7.9";

/// Environment variable naming a folder with `kube-apiserver` and `etcd`.
pub const KUBEBUILDER_ASSETS: &str = "KUBEBUILDER_ASSETS";

/// Environment variable overriding the cache root (default `$HOME/.cache/kfp-testenv`).
pub const KFP_TESTENV_CACHE: &str = "KFP_TESTENV_CACHE";

const HOW_TO_FIX: &str = "Run `scripts/test-assets.sh` from the kfp-operator repository (it builds them into the \
     cache folder and prints it), or set KUBEBUILDER_ASSETS to a folder that holds executable \
     `kube-apiserver` and `etcd` binaries.";

/// The binaries a [`TestEnv`](crate::TestEnv) runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assets {
    /// The folder they were found in.
    pub dir: PathBuf,
    /// Path of `kube-apiserver`.
    pub kube_apiserver: PathBuf,
    /// Path of `etcd`.
    pub etcd: PathBuf,
}

impl Assets {
    /// Finds `kube-apiserver` and `etcd`: in `$KUBEBUILDER_ASSETS`, then in [`cache_dir`].
    ///
    /// Fails with [`Error::AssetsMissing`], one message that says where it looked and how to get them.
    pub fn find() -> Result<Assets> {
        Assets::find_in(env_dir(KUBEBUILDER_ASSETS), cache_dir())
    }

    fn find_in(kubebuilder_assets: Option<PathBuf>, cache: Option<PathBuf>) -> Result<Assets> {
        let mut looked = Vec::new();
        if let Some(dir) = kubebuilder_assets {
            match Assets::in_dir(&dir) {
                Ok(assets) => return Ok(assets),
                Err(missing) => looked.push(format!(
                    "KUBEBUILDER_ASSETS={} (missing {missing})",
                    dir.display()
                )),
            }
        }
        match cache {
            Some(dir) => match Assets::in_dir(&dir) {
                Ok(assets) => return Ok(assets),
                Err(missing) => looked.push(format!("{} (missing {missing})", dir.display())),
            },
            None => looked.push("the cache folder (neither KFP_TESTENV_CACHE nor HOME is set)".to_string()),
        }
        Err(Error::AssetsMissing(format!(
            "kube-apiserver and etcd for the test control plane were not found; looked in {}. {HOW_TO_FIX}",
            looked.join(" and ")
        )))
    }

    /// Uses the binaries in `dir`; `Err` names the ones that are missing or not executable.
    fn in_dir(dir: &Path) -> std::result::Result<Assets, String> {
        let kube_apiserver = dir.join("kube-apiserver");
        let etcd = dir.join("etcd");
        let missing: Vec<&str> = [("kube-apiserver", &kube_apiserver), ("etcd", &etcd)]
            .into_iter()
            .filter(|(_, path)| !is_executable(path))
            .map(|(name, _)| name)
            .collect();
        if missing.is_empty() {
            Ok(Assets {
                dir: dir.to_path_buf(),
                kube_apiserver,
                etcd,
            })
        } else {
            Err(missing.join(" and "))
        }
    }
}

/// The folder `scripts/test-assets.sh` fills: `${KFP_TESTENV_CACHE:-$HOME/.cache/kfp-testenv}/v1.35.4`.
pub fn cache_dir() -> Option<PathBuf> {
    let root = env_dir(KFP_TESTENV_CACHE)
        .or_else(|| env_dir("HOME").map(|home| home.join(".cache").join("kfp-testenv")))?;
    Some(root.join(KUBERNETES_VERSION))
}

/// The folder with the Argo Workflows CRDs (`argoproj.io_workflows.yaml`,
/// `argoproj.io_workflowtemplates.yaml`), full schemas, as copied by `scripts/test-assets.sh`.
pub fn argo_crds_dir() -> Result<PathBuf> {
    let candidates: Vec<PathBuf> = env_dir(KUBEBUILDER_ASSETS)
        .into_iter()
        .chain(cache_dir())
        .map(|dir| dir.join("argo-crds"))
        .collect();
    candidates
        .iter()
        .find(|dir| dir.join("argoproj.io_workflows.yaml").is_file())
        .cloned()
        .ok_or_else(|| {
            let looked: Vec<String> = candidates.iter().map(|d| d.display().to_string()).collect();
            Error::AssetsMissing(format!(
                "the Argo Workflows CRDs were not found; looked in {}. Run `scripts/test-assets.sh` \
                 from the kfp-operator repository to fetch them.",
                if looked.is_empty() {
                    "no folder (HOME is not set)".to_string()
                } else {
                    looked.join(" and ")
                }
            ))
        })
}

fn env_dir(var: &str) -> Option<PathBuf> {
    std::env::var_os(var).filter(|v| !v.is_empty()).map(PathBuf::from)
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_without_binaries_names_what_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Assets::in_dir(dir.path()).unwrap_err(), "kube-apiserver and etcd");
        std::fs::write(dir.path().join("etcd"), "#!/bin/sh\n").unwrap();
        // Present but not executable still counts as missing.
        assert_eq!(Assets::in_dir(dir.path()).unwrap_err(), "kube-apiserver and etcd");
    }

    #[test]
    fn without_binaries_one_message_says_where_it_looked_and_what_to_do() {
        let err =
            Assets::find_in(Some("/nonexistent/kb".into()), Some("/nonexistent/cache".into())).unwrap_err();
        assert_eq!(
            err.to_string(),
            "kube-apiserver and etcd for the test control plane were not found; looked in \
             KUBEBUILDER_ASSETS=/nonexistent/kb (missing kube-apiserver and etcd) and /nonexistent/cache \
             (missing kube-apiserver and etcd). Run `scripts/test-assets.sh` from the kfp-operator \
             repository (it builds them into the cache folder and prints it), or set KUBEBUILDER_ASSETS \
             to a folder that holds executable `kube-apiserver` and `etcd` binaries."
        );
    }

    #[test]
    fn a_folder_with_both_executables_is_used() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        for name in ["etcd", "kube-apiserver"] {
            let path = dir.path().join(name);
            std::fs::write(&path, "#!/bin/sh\n").unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let assets = Assets::in_dir(dir.path()).unwrap();
        assert_eq!(assets.etcd, dir.path().join("etcd"));
    }
}
