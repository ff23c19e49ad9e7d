//! The objects a RunConfiguration owns (its Runs and RunSchedules), found by owner reference.

use kfp_core::resources::v1beta1::RunConfiguration;
use kube::ResourceExt;
use kube::api::{Api, ListParams};

/// Whether `owner` is among `child`'s owner references.
pub fn owned_by<K: kube::Resource>(child: &K, owner: &RunConfiguration) -> bool {
    child
        .owner_references()
        .iter()
        .any(|o| Some(&o.uid) == owner.uid().as_ref())
}

/// The objects of `api` that `owner` owns.
pub async fn owned<K>(api: &Api<K>, owner: &RunConfiguration) -> Vec<K>
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned,
{
    api.list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|c| owned_by(c, owner))
        .collect()
}

/// Waits until `owner` controls exactly `count` objects of a kind, all satisfying `condition`.
pub async fn wait_owned<K>(
    api: &Api<K>,
    owner: &RunConfiguration,
    count: usize,
    what: &str,
    condition: impl Fn(&K) -> bool,
) -> Vec<K>
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned,
{
    kfp_testenv::wait_for(what, super::WAIT, || async {
        let children = owned(api, owner).await;
        Ok::<_, String>((children.len() == count && children.iter().all(&condition)).then_some(children))
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"))
}
