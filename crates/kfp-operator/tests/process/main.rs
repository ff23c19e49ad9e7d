#![allow(clippy::expect_used, clippy::panic, clippy::unwrap_used)]

#[path = "../support/mod.rs"]
mod support;

mod example_manifests;
mod graph_command;
mod images;
mod local_command;
mod operator_process;
mod provider_service_process;
mod version_command;
