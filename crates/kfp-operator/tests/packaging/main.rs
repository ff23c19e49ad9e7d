#![allow(clippy::expect_used, clippy::panic, clippy::unwrap_used)]

#[path = "../support/mod.rs"]
mod support;

mod argocd_health;
mod chart;
mod chart_install;
mod chart_rbac;
mod crds_apiserver;
mod crds_drift;
mod docs_links;
mod go_compat_schemas;
