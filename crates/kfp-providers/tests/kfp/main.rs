#![allow(clippy::expect_used, clippy::panic, clippy::unwrap_used)]

#[path = "../support/mod.rs"]
mod support;

mod kfp_apiserver;
mod kfp_artifacts;
mod kfp_conformance;
mod kfp_events;
mod kfp_fixtures;
mod kfp_mlmd;
mod kfp_provider;
