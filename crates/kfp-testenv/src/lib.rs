//! A real Kubernetes control plane (etcd + kube-apiserver) on loopback for tests, in the spirit of
//! controller-runtime's envtest.
//!
//! * [`TestEnv::start`] runs etcd and kube-apiserver on free loopback ports in a fresh temporary folder,
//!   serving TLS with a generated CA, authenticating a generated admin identity (client certificate,
//!   group `system:masters`), authorizing with RBAC, and signing ServiceAccount tokens; it returns
//!   once `/readyz` answers `ok`. [`TestEnv::shared`] gives every test of a test binary the same one.
//! * Clients: [`TestEnv::client`] (admin), [`TestEnv::client_for`] (any user and groups, only what RBAC
//!   grants), [`TestEnv::service_account_client`], [`TestEnv::client_with_token`]; and a kubeconfig
//!   file for humans ([`TestEnv::kubeconfig_path`]), or for another process acting as a ServiceAccount
//!   ([`TestEnv::service_account_token`], [`TestEnv::write_kubeconfig_with_token`]).
//! * [`TestEnv::start_with`] takes [`StartOptions`], e.g. extra kube-apiserver flags (an audit log, admission
//!   plugins).
//! * Helpers that work on any `kube::Client`: [`install_crds`], [`apply_yaml_file`] /
//!   [`apply_yaml`] (server-side apply of any kind, through discovery), [`create_namespace`],
//!   [`wait_for`].
//!
//! * [`kfp_apiserver::KfpApiServer`]: the real Kubeflow Pipelines API server (2.0.5) with MariaDB and an S3
//!   server on loopback, against a [`TestEnv`] (`scripts/kfp-apiserver/build.sh` builds it).
//!
//! * [`cluster::Cluster`]: cluster mode, a one-node cluster running real pods (kubelet, containerd) and the real
//!   Argo workflow-controller inside a network namespace of its own (root only; the end-to-end tier).
//!
//! The binaries come from `$KUBEBUILDER_ASSETS` or from the cache folder that the repository's
//! `scripts/test-assets.sh` fills (see [`Assets::find`]). Without them [`TestEnv::start`] fails with
//! one message saying how to get them: tests fail, they do not skip.
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use kube::api::{Api, DynamicObject};
//! use kfp_testenv::{ApplyOptions, TestEnv, wait_for};
//!
//! #[tokio::test]
//! async fn workflow_is_accepted() -> Result<(), kfp_testenv::Error> {
//!     let env = TestEnv::shared().await?;
//!     env.install_argo_crds().await?;
//!     let ns = env.namespace().await?;
//!     let client = env.client().await?;
//!     kfp_testenv::apply_yaml(&client, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n",
//!         &ApplyOptions::in_namespace(ns.name())).await?;
//!     Ok(())
//! }
//! ```

// Every public item is documented: this crate is also for provider authors' tests.
#![warn(missing_docs)]

mod apply;
pub mod assets;
pub mod cluster;
mod crds;
mod env;
mod error;
pub mod kfp_apiserver;
mod manifest;
mod namespace;
mod pki;
mod process;
mod wait;

pub use apply::{ApplyOptions, apply_yaml, apply_yaml_file};
pub use assets::{ARGO_WORKFLOWS_VERSION, Assets, KUBERNETES_VERSION};
pub use crds::{CRD_FIELD_MANAGER, CRD_READY_TIMEOUT, install_crds, wait_until_served};
pub use env::{ADMIN_USER, StartOptions, TestEnv};
pub use error::{Error, Result};
pub use manifest::{ManifestObject, parse_yaml, read_manifests};
pub use namespace::{TEST_NAMESPACE_LABEL, TestNamespace, create_namespace};
pub use wait::wait_for;
