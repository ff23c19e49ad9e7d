#![allow(clippy::expect_used, clippy::panic, clippy::unwrap_used)]

#[path = "../support/mod.rs"]
mod support;

mod argo_executor;
mod bad_input;
mod compilers;
mod direct_executor;
mod event_wire;
mod health_server;
mod job_compiler;
mod leader_election;
mod leader_replicas;
mod lifecycle;
mod operator_fixtures;
mod provider_controller;
mod restart;
mod run_completion_feed;
mod run_configuration;
mod run_extras;
mod unreadable_objects;
mod webhook_certificates;
mod webhooks;
