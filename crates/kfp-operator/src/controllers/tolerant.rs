//! Watches that survive objects the operator cannot decode (issue 17, item 5; docs/controllers.md "Unreadable
//! objects").
//!
//! A typed `watcher::<K>` fails its whole LIST when one item does not decode as a `K`, and then retries forever:
//! one schema-valid object the Rust types cannot hold (an `int32` field holding 2^32, a time after
//! 9999-12-30T22:00Z) would stop every object of its kind from being reconciled, across restarts. So every watch of
//! the operator's own kinds lists and watches raw objects ([`DynamicObject`]) and decodes each one
//! ([`kfp_core::reconcile::unreadable::decode`]): a good object goes on as a `K`, so the controllers keep their
//! typed API; a bad one is left out and reported once ([`Reports`]): a Warning Event `Unreadable` and a
//! `Readable=False` status condition naming the field and the value. When it decodes again the condition is
//! removed. What the report says is decided in `kfp_core`; this module only carries it out.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::Mutex;

use futures::StreamExt;
use k8s_openapi::NamespaceResourceScope;
use kfp_core::reconcile::unreadable::{Unreadable, cleared_conditions, decode};
use kube::api::{Api, ApiResource, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::PartialObjectMetaExt;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::Context;

/// What a watched kind of the operator is: namespaced, typed, decodable, shareable between tasks.
pub trait Kind:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + DeserializeOwned
    + Clone
    + Debug
    + Send
    + Sync
    + 'static
{
}

impl<K> Kind for K where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + DeserializeOwned
        + Clone
        + Debug
        + Send
        + Sync
        + 'static
{
}

/// The reports made so far, shared by every watch of a process: several watches see the same kind (the
/// RunConfiguration controller's own, its dependency watch, the Run controller's), and each bad version is reported
/// once. Keyed by kind, namespace and name; the value is the reported message.
#[derive(Default)]
pub struct Reports {
    reported: Mutex<HashMap<(String, String, String), String>>,
}

impl Reports {
    fn key(kind: &str, object: &DynamicObject) -> (String, String, String) {
        (
            kind.to_string(),
            object.namespace().unwrap_or_default(),
            object.name_any(),
        )
    }

    /// Whether `message` about `object` is new (and remembers it).
    fn first(&self, kind: &str, object: &DynamicObject, message: &str) -> bool {
        let mut reported = self
            .reported
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let key = Self::key(kind, object);
        if reported.get(&key).is_some_and(|m| m == message) {
            return false;
        }
        reported.insert(key, message.to_string());
        true
    }

    fn forget(&self, kind: &str, object: &DynamicObject) {
        self.reported
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&Self::key(kind, object));
    }
}

/// A watch of the `K`s in the watched namespaces (with backoff) that leaves out and reports the objects that do not
/// decode as `K`; the stream of events is what `kube::runtime::watcher` would give for the others.
pub fn watch<K>(
    ctx: &Context,
    config: watcher::Config,
) -> impl futures::Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static
where
    K: Kind,
{
    let resource = ApiResource::erase::<K>(&());
    let api = ctx.watched_dynamic(&resource);
    let ctx = ctx.clone();
    watcher(api, config).default_backoff().filter_map(move |event| {
        let out = match event {
            Err(error) => Some(Err(error)),
            Ok(watcher::Event::Init) => Some(Ok(watcher::Event::Init)),
            Ok(watcher::Event::InitDone) => Some(Ok(watcher::Event::InitDone)),
            Ok(watcher::Event::Apply(object)) => {
                read::<K>(&ctx, &resource, object).map(|k| Ok(watcher::Event::Apply(k)))
            }
            Ok(watcher::Event::InitApply(object)) => {
                read::<K>(&ctx, &resource, object).map(|k| Ok(watcher::Event::InitApply(k)))
            }
            Ok(watcher::Event::Delete(object)) => {
                ctx.unreadable.forget(&resource.kind, &object);
                decode_dynamic::<K>(&object)
                    .ok()
                    .map(|k| Ok(watcher::Event::Delete(k)))
            }
        };
        futures::future::ready(out)
    })
}

fn decode_dynamic<K: DeserializeOwned>(object: &DynamicObject) -> Result<K, Unreadable> {
    let value = serde_json::to_value(object).map_err(|error| Unreadable {
        field: ".".to_string(),
        value: String::new(),
        detail: error.to_string(),
    })?;
    decode(&value)
}

/// Decodes `object`; reports it when it cannot be read, and clears an earlier report when it can.
fn read<K: Kind>(ctx: &Context, resource: &ApiResource, object: DynamicObject) -> Option<K> {
    match decode_dynamic::<K>(&object) {
        Ok(decoded) => {
            if let Some(conditions) = cleared_conditions(conditions_of(&object)) {
                ctx.unreadable.forget(&resource.kind, &object);
                let api = api_for(ctx, resource, &object);
                tokio::spawn(async move { write_conditions(&api, &object, conditions).await });
            }
            Some(decoded)
        }
        Err(unreadable) => {
            if ctx
                .unreadable
                .first(&resource.kind, &object, &unreadable.message())
            {
                let ctx = ctx.clone();
                let resource = resource.clone();
                tokio::spawn(async move { report::<K>(&ctx, &resource, &object, &unreadable).await });
            }
            None
        }
    }
}

fn conditions_of(object: &DynamicObject) -> &[Value] {
    object
        .data
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn api_for(ctx: &Context, resource: &ApiResource, object: &DynamicObject) -> Api<DynamicObject> {
    Api::namespaced_with(
        ctx.client.clone(),
        &object.namespace().unwrap_or_default(),
        resource,
    )
}

/// The Warning Event, the log line and the condition for one unreadable object.
async fn report<K: Resource<DynamicType = ()> + Sync>(
    ctx: &Context,
    resource: &ApiResource,
    object: &DynamicObject,
    unreadable: &Unreadable,
) {
    tracing::warn!(
        kind = %resource.kind,
        namespace = %object.namespace().unwrap_or_default(),
        name = %object.name_any(),
        field = %unreadable.field,
        value = %unreadable.value,
        detail = %unreadable.detail,
        "an object cannot be read; it is not reconciled until the field is fixed"
    );
    let meta = object.metadata.clone().into_request_partial::<K>();
    ctx.record(&meta, &unreadable.event()).await;
    let generation = object.metadata.generation;
    if let Some(conditions) = unreadable.conditions(conditions_of(object), generation, &super::now())
        && !write_conditions(&api_for(ctx, resource, object), object, conditions).await
    {
        // Changed meanwhile (or the API server is away): the next event of the object reports it again.
        ctx.unreadable.forget(&resource.kind, object);
    }
}

/// Writes `status.conditions`, guarded by the object's `resourceVersion` (a newer version is reported on its own).
async fn write_conditions(api: &Api<DynamicObject>, object: &DynamicObject, conditions: Vec<Value>) -> bool {
    let patch = json!({
        "metadata": { "resourceVersion": object.resource_version() },
        "status": { "conditions": conditions },
    });
    let name = object.name_any();
    if let Err(error) = api
        .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        tracing::debug!(%name, %error, "could not write the Readable condition");
        return false;
    }
    true
}

/// [`watch`]'s objects as `Controller::owns_stream`/`watches_stream` take them (applied and deleted).
pub fn touched<K>(
    ctx: &Context,
    config: watcher::Config,
) -> impl futures::Stream<Item = Result<K, watcher::Error>> + Send + 'static
where
    K: Kind,
{
    watch::<K>(ctx, config).touched_objects()
}

/// Lists the `K`s of `namespace` matching `params`, leaving out those that do not decode (the watches report them):
/// a typed LIST fails as a whole on one of them. A RunConfiguration whose owned RunSchedule cannot be read plans as
/// if that RunSchedule were missing.
pub async fn list<K: Kind>(
    client: &kube::Client,
    namespace: &str,
    params: &ListParams,
) -> Result<Vec<K>, kube::Error> {
    let resource = ApiResource::erase::<K>(&());
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &resource);
    let items = api.list(params).await?.items;
    Ok(items
        .into_iter()
        .filter_map(|object| match decode_dynamic::<K>(&object) {
            Ok(decoded) => Some(decoded),
            Err(unreadable) => {
                tracing::debug!(kind = %resource.kind, name = %object.name_any(), field = %unreadable.field,
                    "left an unreadable object out of a list");
                None
            }
        })
        .collect())
}
