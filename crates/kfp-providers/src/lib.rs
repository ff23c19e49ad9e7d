//! Provider implementations and the provider-service HTTP server (see issue 4).

pub mod kfp;
