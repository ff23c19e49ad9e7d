#![allow(clippy::expect_used, clippy::panic, clippy::unwrap_used)]

mod argo;
mod control_plane;
