#![allow(clippy::expect_used, clippy::panic, clippy::unwrap_used)]

#[path = "../common/mod.rs"]
mod common;

mod conversion;
mod event_properties;
mod go_hash_vectors;
mod plan_generic;
mod plan_go_versions;
mod plan_rc;
mod provider_author;
