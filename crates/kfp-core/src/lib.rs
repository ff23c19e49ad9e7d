//! `kfp-core`: the domain of the KFP operator.
//!
//! API types for every kind and version, conversions between versions, byte-exact version hashing, the pure
//! reconcile planning of every controller, and the traits (`Provider`, `EventSource`, `Executor`, `Compiler`)
//! that the operator shell and provider authors implement. No IO, no clock, no environment: time is an input.

// Every public item is documented: provider authors and embedders build on this crate.
#![warn(missing_docs)]

pub mod artifact;
pub mod backoff;
pub mod compiler;
pub mod config;
pub mod conversion;
pub mod definitions;
pub mod event;
pub mod executor;
pub mod graph;
pub mod pipeline_spec;
pub mod provider;
pub mod reconcile;
pub mod registry;
pub mod resources;
pub mod validation;
pub mod values;
pub mod version;
