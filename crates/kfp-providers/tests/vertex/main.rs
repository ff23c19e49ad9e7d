#![allow(clippy::expect_used, clippy::panic, clippy::unwrap_used)]

mod vai_auth;
mod vai_fixtures;
mod vai_gcs;
mod vai_provider;
mod vai_pubsub;
