//! The operator shell: everything that talks to the Kubernetes API, providers and NATS.
//!
//! Decisions live in `kfp-core`'s pure planners; this crate gathers their inputs, applies their commands and hosts
//! the HTTP endpoints. The `kfp-operator` binary is a thin CLI over this library, so in-house platforms can embed
//! the same pieces in their own binaries.

// Every public item is documented: embedders build on this crate (docs/embedding-guide.md).
#![warn(missing_docs)]

pub mod compiler;
pub mod config;
pub mod controllers;
pub mod crds;
pub mod environment;
pub mod executor;
pub mod feed;
pub mod graph;
pub mod health;
pub mod leader;
pub mod local;
pub mod operator;
pub mod reference;
pub mod retry;
pub mod shutdown;
pub mod telemetry;
pub mod versions;
pub mod webhook;
