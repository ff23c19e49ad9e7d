#![allow(clippy::expect_used, clippy::panic, clippy::unwrap_used)]

//! Tests whose operator watches every namespace, apart from the namespace-scoped operators of `controllers`: on
//! a control plane they share they would reconcile the other tests' objects. `dependency_trigger` uses this
//! binary's shared control plane; `dependency_fixture` (fixed namespaces) starts one of its own.

#[path = "../support/mod.rs"]
mod support;

mod dependency_fixture;
mod dependency_trigger;
