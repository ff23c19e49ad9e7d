//! Inputs the planner tests share: the Provider every resource of these tests names, and the planning time.

#![allow(dead_code, clippy::unwrap_used)]

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kfp_core::resources::v1beta1::{Framework, Provider, ProviderSpec};
use kfp_core::values::NamespacedName;

/// `now` of every plan.
pub fn now() -> Time {
    Time("2024-01-01T00:00:00Z".parse().unwrap())
}

/// The Provider's name, `prov/kfp`.
pub fn provider_name() -> NamespacedName {
    NamespacedName::new("prov", "kfp")
}

/// The Provider `prov/kfp` with the framework `tfx`.
pub fn provider() -> Provider {
    let mut p = Provider::new(
        "kfp",
        ProviderSpec {
            frameworks: vec![Framework {
                name: "tfx".into(),
                image: "compiler:1".into(),
                patches: vec![],
            }],
            ..Default::default()
        },
    );
    p.metadata.namespace = Some("prov".into());
    p
}
