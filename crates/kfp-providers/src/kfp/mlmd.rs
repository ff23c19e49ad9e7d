//! Output artifacts from **ML Metadata** (MLMD) over gRPC (docs/providers/kubeflow-pipelines.md, "Artifacts from ML
//! Metadata"), the route the Go provider takes, selected with the `grpcMetadataStoreAddress` / `artifactSource`
//! parameters ([`super::ArtifactSource`]).
//!
//! [`MlmdArtifactResolver`] walks the store KFP v2's driver and launcher write:
//! 1. `GetContextByTypeAndName(type_name "system.PipelineRun", context_name <run id>)`: the run's context. MLMD
//!    answers an unknown context with an empty response (not an error): the run has no components then (a run that
//!    failed before its root driver ran has none), as the REST resolver answers a run without task details.
//! 2. `GetExecutionsByContext(context_id)`, paged (`options.max_result_size` 100, `next_page_token`).
//! 3. `GetEventsByExecutionIDs(execution ids)` (in chunks of 100 ids), keeping `OUTPUT` events.
//! 4. `GetArtifactsByID(artifact ids)` (in chunks of 100 ids). An OUTPUT event whose artifact MLMD does not return
//!    is an error (retried), like an unknown artifact id on the REST route.
//!
//! Mapping ([`pipeline_components`]): component = execution custom property `display_name` (executions without one
//! are left out); component artifact = artifact custom property `display_name` (KFP's launcher sets it to the
//! output name unless the component set its own), else the first `key` step of the event path (the output name);
//! instance = `{uri, metadata}` with `metadata` = the artifact's custom properties overlaid with its properties,
//! converted by [`value_to_json`] (`int_value` -> integer, `double_value` -> number, `string_value` -> string,
//! `bool_value` -> bool, `struct_value` -> object; `proto_value` and unset values are left out). A filter
//! `pushed == 1` therefore matches a TFX `pushed: int_value 1` and a KFP `pushed: double_value 1.0` alike.
//! Executions sharing a display name (loop iterations) are merged; instances keep execution order, then the event
//! path's `index` step, then artifact id.
//!
//! Every request carries the KFP bearer token (`authorization: Bearer <token>`, read from `tokenPath` on every call
//! so a rotated projected token is used at once; required in multi-user mode) and is limited by
//! `requestTimeoutSeconds`. Errors: `Unavailable`, `DeadlineExceeded`, a timeout and other server or transport
//! failures are [`ProviderError::Transient`]; `NotFound` is [`ProviderError::NotFound`]; `InvalidArgument`,
//! `FailedPrecondition`, `OutOfRange`, `AlreadyExists` and `Unimplemented` are [`ProviderError::Invalid`]. The
//! event source withholds the event on any of them and reads the workflow again later.
//!
//! The messages of [`proto`] are written by hand with `prost` (no `protoc`, no build script) from the official
//! `ml_metadata/proto/metadata_store.proto` and `metadata_store_service.proto` (google/ml-metadata): only the
//! messages and fields used here, with the official names, tags and types (proto2: `optional` scalars, unpacked
//! repeated scalars), so the wire paths are `/ml_metadata.MetadataStoreService/<Method>`. Unknown fields a newer
//! server sends are skipped by prost. The channel is plaintext HTTP/2 (KFP's `metadata-grpc-service` serves no
//! TLS); an `https://` address is refused.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use http::uri::PathAndQuery;
use kfp_core::event::{ComponentArtifact, ComponentArtifactInstance, PipelineComponent};
use kfp_core::provider::ProviderError;
use serde_json::{Map, Value as Json};
use tonic::Code;
use tonic::client::Grpc;
use tonic::metadata::MetadataValue;
use tonic::transport::{Channel, Endpoint};
use tonic_prost::ProstCodec;

use super::KfpConfig;
use super::api::Run;
use super::artifacts::ArtifactResolver;
use super::client::TokenSource;
use proto::{
    Artifact, Context, Event, Execution, GetArtifactsByIdRequest, GetArtifactsByIdResponse,
    GetContextByTypeAndNameRequest, GetContextByTypeAndNameResponse, GetEventsByExecutionIdsRequest,
    GetEventsByExecutionIdsResponse, GetExecutionsByContextRequest, GetExecutionsByContextResponse,
    ListOperationOptions,
};

/// The gRPC service name (`package ml_metadata; service MetadataStoreService`).
pub const SERVICE: &str = "ml_metadata.MetadataStoreService";
/// The context type KFP v2 records a run under; the context name is the run id.
pub const PIPELINE_RUN_CONTEXT_TYPE: &str = "system.PipelineRun";
/// The custom property holding an execution's task name and an artifact's output name.
pub const DISPLAY_NAME: &str = "display_name";
/// Executions per `GetExecutionsByContext` page (MLMD caps pages at 100).
pub const PAGE_SIZE: i32 = 100;
/// Ids per `GetEventsByExecutionIDs` / `GetArtifactsByID` request.
pub const IDS_PER_REQUEST: usize = 100;

/// Hand-written `prost` messages: the subset of `ml_metadata` the resolver (and a test server) uses, with the
/// official field names, tags and types (documented in ml_metadata's `metadata_store.proto`).
#[allow(missing_docs)]
pub mod proto {
    use std::collections::HashMap;

    /// `ml_metadata.Value`: a property value.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Value {
        #[prost(oneof = "value::Value", tags = "1, 2, 3, 4, 5, 6")]
        pub value: Option<value::Value>,
    }

    pub mod value {
        /// The `value` oneof of `ml_metadata.Value`.
        #[derive(Clone, PartialEq, prost::Oneof)]
        pub enum Value {
            #[prost(int64, tag = "1")]
            IntValue(i64),
            #[prost(double, tag = "2")]
            DoubleValue(f64),
            #[prost(string, tag = "3")]
            StringValue(String),
            #[prost(message, tag = "4")]
            StructValue(prost_types::Struct),
            #[prost(message, tag = "5")]
            ProtoValue(prost_types::Any),
            #[prost(bool, tag = "6")]
            BoolValue(bool),
        }
    }

    impl Value {
        pub fn int(v: i64) -> Self {
            Self {
                value: Some(value::Value::IntValue(v)),
            }
        }
        pub fn double(v: f64) -> Self {
            Self {
                value: Some(value::Value::DoubleValue(v)),
            }
        }
        pub fn string(v: impl Into<String>) -> Self {
            Self {
                value: Some(value::Value::StringValue(v.into())),
            }
        }
        pub fn bool(v: bool) -> Self {
            Self {
                value: Some(value::Value::BoolValue(v)),
            }
        }
        pub fn structure(v: prost_types::Struct) -> Self {
            Self {
                value: Some(value::Value::StructValue(v)),
            }
        }
        /// The string of a `string_value`.
        pub fn as_str(&self) -> Option<&str> {
            match &self.value {
                Some(value::Value::StringValue(s)) => Some(s),
                _ => None,
            }
        }
    }

    /// `ml_metadata.Artifact` (fields used: `id`, `uri`, `properties`, `custom_properties`; `type_id`, `name`,
    /// `type` and `state` for completeness of the store a fake keeps).
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Artifact {
        #[prost(int64, optional, tag = "1")]
        pub id: Option<i64>,
        #[prost(int64, optional, tag = "2")]
        pub type_id: Option<i64>,
        #[prost(string, optional, tag = "3")]
        pub uri: Option<String>,
        #[prost(map = "string, message", tag = "4")]
        pub properties: HashMap<String, Value>,
        #[prost(map = "string, message", tag = "5")]
        pub custom_properties: HashMap<String, Value>,
        /// `Artifact.State` (`LIVE` = 2).
        #[prost(int32, optional, tag = "6")]
        pub state: Option<i32>,
        #[prost(string, optional, tag = "7")]
        pub name: Option<String>,
        #[prost(string, optional, tag = "8")]
        pub r#type: Option<String>,
    }

    /// `ml_metadata.Execution`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Execution {
        #[prost(int64, optional, tag = "1")]
        pub id: Option<i64>,
        #[prost(int64, optional, tag = "2")]
        pub type_id: Option<i64>,
        /// `Execution.State` (`COMPLETE` = 3).
        #[prost(int32, optional, tag = "3")]
        pub last_known_state: Option<i32>,
        #[prost(map = "string, message", tag = "4")]
        pub properties: HashMap<String, Value>,
        #[prost(map = "string, message", tag = "5")]
        pub custom_properties: HashMap<String, Value>,
        #[prost(string, optional, tag = "6")]
        pub name: Option<String>,
        #[prost(string, optional, tag = "7")]
        pub r#type: Option<String>,
    }

    /// `ml_metadata.Context`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Context {
        #[prost(int64, optional, tag = "1")]
        pub id: Option<i64>,
        #[prost(int64, optional, tag = "2")]
        pub type_id: Option<i64>,
        #[prost(string, optional, tag = "3")]
        pub name: Option<String>,
        #[prost(map = "string, message", tag = "4")]
        pub properties: HashMap<String, Value>,
        #[prost(map = "string, message", tag = "5")]
        pub custom_properties: HashMap<String, Value>,
        #[prost(string, optional, tag = "6")]
        pub r#type: Option<String>,
    }

    /// `ml_metadata.Event`: an edge between an execution and an artifact.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Event {
        #[prost(int64, optional, tag = "1")]
        pub artifact_id: Option<i64>,
        #[prost(int64, optional, tag = "2")]
        pub execution_id: Option<i64>,
        #[prost(message, optional, tag = "3")]
        pub path: Option<event::Path>,
        #[prost(enumeration = "event::Type", optional, tag = "4")]
        pub r#type: Option<i32>,
        #[prost(int64, optional, tag = "5")]
        pub milliseconds_since_epoch: Option<i64>,
    }

    pub mod event {
        /// `Event.Path`: the output name (`key`) and, for lists, the position (`index`).
        #[derive(Clone, PartialEq, prost::Message)]
        pub struct Path {
            #[prost(message, repeated, tag = "1")]
            pub steps: Vec<path::Step>,
        }

        pub mod path {
            /// `Event.Path.Step`.
            #[derive(Clone, PartialEq, prost::Message)]
            pub struct Step {
                #[prost(oneof = "step::Value", tags = "1, 2")]
                pub value: Option<step::Value>,
            }

            pub mod step {
                /// The `value` oneof of `Event.Path.Step`.
                #[derive(Clone, PartialEq, prost::Oneof)]
                pub enum Value {
                    #[prost(int64, tag = "1")]
                    Index(i64),
                    #[prost(string, tag = "2")]
                    Key(String),
                }
            }
        }

        /// `Event.Type`.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
        #[repr(i32)]
        pub enum Type {
            Unknown = 0,
            DeclaredOutput = 1,
            DeclaredInput = 2,
            Input = 3,
            Output = 4,
            InternalInput = 5,
            InternalOutput = 6,
            PendingOutput = 7,
        }
    }

    impl Event {
        /// The first `key` step of the path (KFP: the output name).
        pub fn path_key(&self) -> Option<&str> {
            self.steps().find_map(|step| match &step.value {
                Some(event::path::step::Value::Key(key)) => Some(key.as_str()),
                _ => None,
            })
        }

        /// The first `index` step of the path.
        pub fn path_index(&self) -> Option<i64> {
            self.steps().find_map(|step| match step.value {
                Some(event::path::step::Value::Index(index)) => Some(index),
                _ => None,
            })
        }

        fn steps(&self) -> impl Iterator<Item = &event::path::Step> {
            self.path.iter().flat_map(|p| &p.steps)
        }
    }

    /// `ml_metadata.ListOperationOptions` (paging fields only; `order_by_field` (2) and `filter_query` (4) unused).
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ListOperationOptions {
        /// Official default 20; at most 100 are returned; zero or less is `InvalidArgument`.
        #[prost(int32, optional, tag = "1", default = "20")]
        pub max_result_size: Option<i32>,
        #[prost(string, optional, tag = "3")]
        pub next_page_token: Option<String>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct GetContextByTypeAndNameRequest {
        #[prost(string, optional, tag = "1")]
        pub type_name: Option<String>,
        #[prost(string, optional, tag = "2")]
        pub context_name: Option<String>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct GetContextByTypeAndNameResponse {
        /// Absent when there is no such context (not an error).
        #[prost(message, optional, tag = "1")]
        pub context: Option<Context>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct GetExecutionsByContextRequest {
        #[prost(int64, optional, tag = "1")]
        pub context_id: Option<i64>,
        #[prost(message, optional, tag = "2")]
        pub options: Option<ListOperationOptions>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct GetExecutionsByContextResponse {
        #[prost(message, repeated, tag = "1")]
        pub executions: Vec<Execution>,
        #[prost(string, optional, tag = "2")]
        pub next_page_token: Option<String>,
    }

    /// `GetEventsByExecutionIDsRequest`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct GetEventsByExecutionIdsRequest {
        #[prost(int64, repeated, packed = "false", tag = "1")]
        pub execution_ids: Vec<i64>,
    }

    /// `GetEventsByExecutionIDsResponse`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct GetEventsByExecutionIdsResponse {
        #[prost(message, repeated, tag = "1")]
        pub events: Vec<Event>,
    }

    /// `GetArtifactsByIDRequest`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct GetArtifactsByIdRequest {
        #[prost(int64, repeated, packed = "false", tag = "1")]
        pub artifact_ids: Vec<i64>,
    }

    /// `GetArtifactsByIDResponse`: the artifacts found (not index-aligned).
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct GetArtifactsByIdResponse {
        #[prost(message, repeated, tag = "1")]
        pub artifacts: Vec<Artifact>,
    }
}

/// The RPC paths, `/ml_metadata.MetadataStoreService/<Method>`.
#[allow(missing_docs)]
pub mod methods {
    pub const GET_CONTEXT_BY_TYPE_AND_NAME: &str =
        "/ml_metadata.MetadataStoreService/GetContextByTypeAndName";
    pub const GET_EXECUTIONS_BY_CONTEXT: &str = "/ml_metadata.MetadataStoreService/GetExecutionsByContext";
    pub const GET_EVENTS_BY_EXECUTION_IDS: &str = "/ml_metadata.MetadataStoreService/GetEventsByExecutionIDs";
    pub const GET_ARTIFACTS_BY_ID: &str = "/ml_metadata.MetadataStoreService/GetArtifactsByID";
}

/// A `MetadataStoreService` client: plaintext channel made on first use, bearer token read per call, a timeout
/// per call, gRPC statuses mapped to [`ProviderError`] classes.
#[derive(Debug, Clone)]
pub struct MlmdClient {
    endpoint: Endpoint,
    channel: Arc<tokio::sync::OnceCell<Channel>>,
    token: TokenSource,
    timeout: Duration,
}

impl MlmdClient {
    /// A client of the store at `address` (`host:port`, or `http://host:port`); nothing is connected yet.
    pub(crate) fn new(address: &str, token: TokenSource, timeout: Duration) -> Result<Self, ProviderError> {
        let address = address.trim();
        if address.starts_with("https://") {
            return Err(ProviderError::invalid(format!(
                "grpcMetadataStoreAddress {address:?}: TLS is not supported (ML Metadata serves plaintext gRPC); \
                 give host:port"
            )));
        }
        let uri = if address.starts_with("http://") {
            address.to_string()
        } else {
            format!("http://{address}")
        };
        let endpoint = Endpoint::from_shared(uri)
            .map_err(|e| {
                ProviderError::invalid(format!(
                    "grpcMetadataStoreAddress {address:?} is not host:port: {e}"
                ))
            })?
            .connect_timeout(timeout)
            .timeout(timeout);
        Ok(Self {
            endpoint,
            channel: Arc::new(tokio::sync::OnceCell::new()),
            token,
            timeout,
        })
    }

    /// A client for `config`'s token and timeout.
    pub fn from_config(address: &str, config: &KfpConfig) -> Result<Self, ProviderError> {
        let token = TokenSource {
            path: config.token_path.clone(),
            required: config.multi_user,
        };
        Self::new(address, token, config.request_timeout)
    }

    async fn unary<Req, Resp>(&self, method: &'static str, message: Req) -> Result<Resp, ProviderError>
    where
        Req: prost::Message + Send + Sync + 'static,
        Resp: prost::Message + Default + Send + Sync + 'static,
    {
        let channel = self
            .channel
            .get_or_init(|| async { self.endpoint.connect_lazy() })
            .await
            .clone();
        let mut request = tonic::Request::new(message);
        request.set_timeout(self.timeout);
        if let Some(token) = self.token.read().await? {
            let value = MetadataValue::try_from(format!("Bearer {token}")).map_err(|_| {
                ProviderError::invalid(format!(
                    "the Kubeflow Pipelines token file {} holds characters a gRPC header cannot carry",
                    self.token.path.display()
                ))
            })?;
            request.metadata_mut().insert("authorization", value);
        }
        let call = async move {
            let mut grpc = Grpc::new(channel);
            grpc.ready().await.map_err(|e| {
                ProviderError::transient(format!(
                    "ML Metadata is not reachable for {}: {}",
                    short(method),
                    error_chain(&e)
                ))
            })?;
            let codec: ProstCodec<Req, Resp> = ProstCodec::default();
            grpc.unary(request, PathAndQuery::from_static(method), codec)
                .await
                .map(tonic::Response::into_inner)
                .map_err(|status| status_error(method, &status))
        };
        match tokio::time::timeout(self.timeout, call).await {
            Ok(result) => result,
            Err(_) => Err(ProviderError::transient(format!(
                "ML Metadata did not answer {} within {:?}",
                short(method),
                self.timeout
            ))),
        }
    }

    /// `GetContextByTypeAndName`; `None` when there is no such context.
    pub async fn context_by_type_and_name(
        &self,
        type_name: &str,
        context_name: &str,
    ) -> Result<Option<Context>, ProviderError> {
        let request = GetContextByTypeAndNameRequest {
            type_name: Some(type_name.to_string()),
            context_name: Some(context_name.to_string()),
        };
        let response: GetContextByTypeAndNameResponse =
            self.unary(methods::GET_CONTEXT_BY_TYPE_AND_NAME, request).await?;
        Ok(response.context)
    }

    /// Every execution of the context, page by page (`next_page_token` until empty).
    pub async fn executions_by_context(&self, context_id: i64) -> Result<Vec<Execution>, ProviderError> {
        let mut executions = Vec::new();
        let mut token: Option<String> = None;
        // A server that keeps answering the same token would loop forever: stop after a generous bound.
        for _ in 0..10_000 {
            let request = GetExecutionsByContextRequest {
                context_id: Some(context_id),
                options: Some(ListOperationOptions {
                    max_result_size: Some(PAGE_SIZE),
                    next_page_token: token.clone(),
                }),
            };
            let mut page: GetExecutionsByContextResponse =
                self.unary(methods::GET_EXECUTIONS_BY_CONTEXT, request).await?;
            executions.append(&mut page.executions);
            match page.next_page_token.filter(|t| !t.is_empty()) {
                Some(next) if Some(&next) != token.as_ref() => token = Some(next),
                _ => return Ok(executions),
            }
        }
        Err(ProviderError::transient(format!(
            "listing the executions of ML Metadata context {context_id} did not end after 10000 pages"
        )))
    }

    /// Every event of the executions `ids`.
    pub async fn events_by_execution_ids(&self, ids: &[i64]) -> Result<Vec<Event>, ProviderError> {
        let mut events = Vec::new();
        for chunk in ids.chunks(IDS_PER_REQUEST) {
            let request = GetEventsByExecutionIdsRequest {
                execution_ids: chunk.to_vec(),
            };
            let mut response: GetEventsByExecutionIdsResponse =
                self.unary(methods::GET_EVENTS_BY_EXECUTION_IDS, request).await?;
            events.append(&mut response.events);
        }
        Ok(events)
    }

    /// The artifacts `ids` that exist.
    pub async fn artifacts_by_id(&self, ids: &[i64]) -> Result<Vec<Artifact>, ProviderError> {
        let mut artifacts = Vec::new();
        for chunk in ids.chunks(IDS_PER_REQUEST) {
            let request = GetArtifactsByIdRequest {
                artifact_ids: chunk.to_vec(),
            };
            let mut response: GetArtifactsByIdResponse =
                self.unary(methods::GET_ARTIFACTS_BY_ID, request).await?;
            artifacts.append(&mut response.artifacts);
        }
        Ok(artifacts)
    }
}

/// [`ArtifactResolver`] over ML Metadata (see the module documentation).
#[derive(Debug, Clone)]
pub struct MlmdArtifactResolver {
    client: MlmdClient,
}

impl MlmdArtifactResolver {
    /// A resolver that reads the store at `address` with `config`'s token file and request timeout.
    pub fn new(address: &str, config: &KfpConfig) -> Result<Self, ProviderError> {
        Ok(Self {
            client: MlmdClient::from_config(address, config)?,
        })
    }

    /// The gRPC client it reads ML Metadata with.
    pub fn client(&self) -> &MlmdClient {
        &self.client
    }
}

#[async_trait::async_trait]
impl ArtifactResolver for MlmdArtifactResolver {
    async fn pipeline_components(
        &self,
        run_id: &str,
        _run: &Run,
    ) -> Result<Vec<PipelineComponent>, ProviderError> {
        let Some(context) = self
            .client
            .context_by_type_and_name(PIPELINE_RUN_CONTEXT_TYPE, run_id)
            .await?
        else {
            tracing::debug!(run_id = %run_id, "ML Metadata has no context for the run: no components");
            return Ok(Vec::new());
        };
        let context_id = context.id.ok_or_else(|| {
            ProviderError::transient(format!(
                "ML Metadata answered the context of run {run_id} without an id"
            ))
        })?;
        let executions = self.client.executions_by_context(context_id).await?;
        let execution_ids: Vec<i64> = executions.iter().filter_map(|e| e.id).collect();
        if execution_ids.is_empty() {
            return Ok(Vec::new());
        }
        let events: Vec<Event> = self
            .client
            .events_by_execution_ids(&execution_ids)
            .await?
            .into_iter()
            .filter(is_output)
            .collect();
        let mut artifact_ids: Vec<i64> = events.iter().filter_map(|e| e.artifact_id).collect();
        artifact_ids.sort_unstable();
        artifact_ids.dedup();
        if artifact_ids.is_empty() {
            return Ok(Vec::new());
        }
        let artifacts = self.client.artifacts_by_id(&artifact_ids).await?;
        pipeline_components(&executions, &events, &artifacts)
    }
}

fn is_output(event: &Event) -> bool {
    event.r#type == Some(proto::event::Type::Output as i32)
}

/// The components of a run from its executions, their events (only `OUTPUT` ones count) and the artifacts those
/// name (see the module documentation for the mapping). An OUTPUT event naming an artifact not in `artifacts` is
/// an error.
pub fn pipeline_components(
    executions: &[Execution],
    events: &[Event],
    artifacts: &[Artifact],
) -> Result<Vec<PipelineComponent>, ProviderError> {
    let artifacts: HashMap<i64, &Artifact> =
        artifacts.iter().filter_map(|a| a.id.map(|id| (id, a))).collect();
    let mut outputs: HashMap<i64, Vec<&Event>> = HashMap::new();
    for event in events.iter().filter(|e| is_output(e)) {
        if let (Some(execution), Some(_)) = (event.execution_id, event.artifact_id) {
            outputs.entry(execution).or_default().push(event);
        }
    }
    let mut components: Vec<PipelineComponent> = Vec::new();
    for execution in executions {
        let Some(id) = execution.id else { continue };
        let Some(mut events) = outputs.remove(&id) else {
            continue;
        };
        let name = execution
            .custom_properties
            .get(DISPLAY_NAME)
            .and_then(proto::Value::as_str)
            .filter(|n| !n.is_empty());
        let Some(name) = name else {
            tracing::debug!(
                execution = id,
                "skipping an ML Metadata execution without a display_name"
            );
            continue;
        };
        events.sort_by_key(|e| (e.path_index().unwrap_or(0), e.artifact_id));
        let index = match components.iter().position(|c| c.name == name) {
            Some(index) => index,
            None => {
                components.push(PipelineComponent {
                    name: name.to_string(),
                    component_artifacts: Vec::new(),
                });
                components.len() - 1
            }
        };
        let component = &mut components[index];
        for event in events {
            let artifact_id = event.artifact_id.unwrap_or_default();
            let artifact = artifacts.get(&artifact_id).ok_or_else(|| {
                ProviderError::transient(format!(
                    "ML Metadata did not return artifact {artifact_id}, an output of execution {id} ({name})"
                ))
            })?;
            let Some(output) = artifact_name(artifact, event) else {
                tracing::debug!(
                    artifact = artifact_id,
                    "skipping an ML Metadata artifact without a display_name or path key"
                );
                continue;
            };
            let instance = instance(artifact);
            match component
                .component_artifacts
                .iter_mut()
                .find(|a| a.name == output)
            {
                Some(existing) => existing.artifacts.push(instance),
                None => component.component_artifacts.push(ComponentArtifact {
                    name: output.to_string(),
                    artifacts: vec![instance],
                }),
            }
        }
        if component.component_artifacts.is_empty() {
            components.remove(index);
        }
    }
    Ok(components)
}

/// The output name of `artifact` (custom property `display_name`, else the event path's key).
fn artifact_name<'a>(artifact: &'a Artifact, event: &'a Event) -> Option<&'a str> {
    artifact
        .custom_properties
        .get(DISPLAY_NAME)
        .and_then(proto::Value::as_str)
        .filter(|n| !n.is_empty())
        .or_else(|| event.path_key().filter(|k| !k.is_empty()))
}

/// The instance of an artifact: `{uri, metadata}` ([`metadata`]).
pub fn instance(artifact: &Artifact) -> ComponentArtifactInstance {
    ComponentArtifactInstance::new(artifact.uri.clone().unwrap_or_default(), metadata(artifact))
}

/// The artifact's custom properties overlaid with its properties, as JSON (sorted keys).
pub fn metadata(artifact: &Artifact) -> Map<String, Json> {
    let sorted = |properties: &HashMap<String, proto::Value>| -> BTreeMap<String, Json> {
        properties
            .iter()
            .filter_map(|(k, v)| value_to_json(v).map(|j| (k.clone(), j)))
            .collect()
    };
    let mut merged = sorted(&artifact.custom_properties);
    merged.extend(sorted(&artifact.properties));
    merged.into_iter().collect()
}

/// An MLMD value as JSON: `int_value` -> integer, `double_value` -> number (`null` when not finite),
/// `string_value` -> string, `bool_value` -> bool, `struct_value` -> object (KFP's launcher wraps a list or object
/// metadata value as `{"list": [...]}` / `{"struct": {...}}`: that wrapper is removed); `proto_value` and an unset
/// value -> `None` (left out).
pub fn value_to_json(value: &proto::Value) -> Option<Json> {
    use proto::value::Value as V;
    match value.value.as_ref()? {
        V::IntValue(i) => Some(Json::from(*i)),
        V::DoubleValue(d) => Some(number(*d)),
        V::StringValue(s) => Some(Json::String(s.clone())),
        V::BoolValue(b) => Some(Json::Bool(*b)),
        V::StructValue(s) => Some(unwrap_kfp_struct(struct_to_json(s))),
        V::ProtoValue(_) => None,
    }
}

fn unwrap_kfp_struct(json: Json) -> Json {
    if let Json::Object(map) = &json
        && map.len() == 1
    {
        match (map.get("struct"), map.get("list")) {
            (Some(inner @ Json::Object(_)), _) | (_, Some(inner @ Json::Array(_))) => return inner.clone(),
            _ => {}
        }
    }
    json
}

fn number(d: f64) -> Json {
    serde_json::Number::from_f64(d).map_or(Json::Null, Json::Number)
}

fn struct_to_json(s: &prost_types::Struct) -> Json {
    Json::Object(
        s.fields
            .iter()
            .map(|(k, v)| (k.clone(), protobuf_value_to_json(v)))
            .collect(),
    )
}

fn protobuf_value_to_json(value: &prost_types::Value) -> Json {
    use prost_types::value::Kind;
    match &value.kind {
        None | Some(Kind::NullValue(_)) => Json::Null,
        Some(Kind::NumberValue(n)) => number(*n),
        Some(Kind::StringValue(s)) => Json::String(s.clone()),
        Some(Kind::BoolValue(b)) => Json::Bool(*b),
        Some(Kind::StructValue(s)) => struct_to_json(s),
        Some(Kind::ListValue(l)) => Json::Array(l.values.iter().map(protobuf_value_to_json).collect()),
    }
}

/// The method name of an RPC path, for messages.
fn short(method: &str) -> &str {
    method.rsplit('/').next().unwrap_or(method)
}

/// The [`ProviderError`] of a gRPC status (see the module documentation).
pub fn status_error(method: &str, status: &tonic::Status) -> ProviderError {
    let detail: String = status.message().chars().take(500).collect();
    let message = format!(
        "ML Metadata answered {:?} to {}: {detail}",
        status.code(),
        short(method)
    );
    match status.code() {
        Code::NotFound => ProviderError::not_found(message),
        Code::InvalidArgument
        | Code::FailedPrecondition
        | Code::OutOfRange
        | Code::AlreadyExists
        | Code::Unimplemented => ProviderError::invalid(message),
        _ => ProviderError::transient(message),
    }
}

/// The error and its sources, e.g. "transport error: connection refused".
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::proto::event::path::{Step, step};
    use super::proto::event::{Path, Type};
    use super::proto::{Value, value};
    use super::*;
    use prost::Message;
    use serde_json::json;

    fn execution(id: i64, display_name: Option<&str>) -> Execution {
        let mut e = Execution {
            id: Some(id),
            ..Execution::default()
        };
        if let Some(name) = display_name {
            e.custom_properties
                .insert(DISPLAY_NAME.into(), Value::string(name));
        }
        e
    }

    fn event(execution: i64, artifact: i64, kind: Type, key: &str, index: Option<i64>) -> Event {
        let mut steps = vec![Step {
            value: Some(step::Value::Key(key.into())),
        }];
        if let Some(index) = index {
            steps.push(Step {
                value: Some(step::Value::Index(index)),
            });
        }
        Event {
            artifact_id: Some(artifact),
            execution_id: Some(execution),
            path: Some(Path { steps }),
            r#type: Some(kind as i32),
            milliseconds_since_epoch: None,
        }
    }

    fn artifact(id: i64, uri: &str, props: &[(&str, Value)]) -> Artifact {
        Artifact {
            id: Some(id),
            uri: Some(uri.into()),
            custom_properties: props.iter().map(|(k, v)| (k.to_string(), v.clone())).collect(),
            ..Artifact::default()
        }
    }

    #[test]
    fn outputs_group_by_execution_display_name_and_artifact_name() {
        let executions = [
            execution(1, Some("root")),
            execution(2, Some("Trainer")),
            execution(3, None),
            execution(4, Some("Trainer")),
        ];
        let events = [
            event(2, 10, Type::Input, "examples", None),
            event(2, 12, Type::Output, "model", None),
            event(2, 11, Type::Output, "stats", None),
            event(3, 13, Type::Output, "x", None),
            event(4, 15, Type::Output, "model", Some(1)),
            event(4, 14, Type::Output, "model", Some(0)),
        ];
        let artifacts = [
            artifact(10, "gs://in", &[]),
            artifact(11, "gs://stats", &[]),
            artifact(
                12,
                "gs://model/1",
                &[(DISPLAY_NAME, Value::string("model")), ("pushed", Value::int(1))],
            ),
            artifact(13, "gs://x", &[]),
            artifact(14, "gs://model/2", &[]),
            artifact(15, "gs://model/3", &[(DISPLAY_NAME, Value::string("model"))]),
        ];
        let components = pipeline_components(&executions, &events, &artifacts).unwrap();
        assert_eq!(
            serde_json::to_value(&components).unwrap(),
            json!([{"name": "Trainer", "componentArtifacts": [
                {"name": "stats", "artifacts": [{"uri": "gs://stats", "metadata": {}}]},
                {"name": "model", "artifacts": [
                    {"uri": "gs://model/1", "metadata": {"display_name": "model", "pushed": 1}},
                    {"uri": "gs://model/2", "metadata": {}},
                    {"uri": "gs://model/3", "metadata": {"display_name": "model"}}]}
            ]}])
        );
    }

    #[test]
    fn a_missing_output_artifact_is_an_error() {
        let executions = [execution(1, Some("Trainer"))];
        let events = [event(1, 9, Type::Output, "model", None)];
        let err = pipeline_components(&executions, &events, &[]).unwrap_err();
        assert!(!err.is_permanent(), "{err:?}");
        assert!(err.to_string().contains("artifact 9"), "{err}");
    }

    #[test]
    fn values_convert_to_json() {
        let nested = prost_types::Struct {
            fields: [(
                "struct".to_string(),
                prost_types::Value {
                    kind: Some(prost_types::value::Kind::StructValue(prost_types::Struct {
                        fields: [(
                            "a".to_string(),
                            prost_types::Value {
                                kind: Some(prost_types::value::Kind::NumberValue(1.5)),
                            },
                        )]
                        .into(),
                    })),
                },
            )]
            .into(),
        };
        let cases = [
            (Value::int(1), Some(json!(1))),
            (Value::double(0.5), Some(json!(0.5))),
            (Value::double(f64::NAN), Some(Json::Null)),
            (Value::string("s"), Some(json!("s"))),
            (Value::bool(true), Some(json!(true))),
            (Value::structure(nested), Some(json!({"a": 1.5}))),
            (
                Value {
                    value: Some(value::Value::ProtoValue(prost_types::Any::default())),
                },
                None,
            ),
            (Value::default(), None),
        ];
        for (value, expected) in cases {
            assert_eq!(value_to_json(&value), expected, "{value:?}");
        }
    }

    #[test]
    fn properties_overlay_custom_properties() {
        let mut a = artifact(1, "u", &[("span", Value::int(1)), ("pushed", Value::int(1))]);
        a.properties.insert("span".into(), Value::int(2));
        assert_eq!(Json::Object(metadata(&a)), json!({"pushed": 1, "span": 2}));
    }

    #[test]
    fn messages_use_the_official_tags() {
        // GetEventsByExecutionIDsRequest{execution_ids: [1, 2]}: proto2 repeated int64 is unpacked (tag 1, varint).
        let bytes = GetEventsByExecutionIdsRequest {
            execution_ids: vec![1, 2],
        }
        .encode_to_vec();
        assert_eq!(bytes, [0x08, 1, 0x08, 2]);
        // GetContextByTypeAndNameRequest: type_name = 1, context_name = 2.
        let bytes = GetContextByTypeAndNameRequest {
            type_name: Some("t".into()),
            context_name: Some("c".into()),
        }
        .encode_to_vec();
        assert_eq!(bytes, [0x0a, 1, b't', 0x12, 1, b'c']);
        // A packed encoding is accepted too.
        let decoded = GetArtifactsByIdRequest::decode(&[0x0a, 2, 3, 4][..]).unwrap();
        assert_eq!(decoded.artifact_ids, [3, 4]);
    }

    #[test]
    fn addresses() {
        let token = TokenSource {
            path: "/nonexistent".into(),
            required: false,
        };
        let timeout = Duration::from_secs(1);
        assert!(MlmdClient::new("metadata-grpc-service.kubeflow:8080", token.clone(), timeout).is_ok());
        assert!(MlmdClient::new("http://127.0.0.1:1", token.clone(), timeout).is_ok());
        assert!(
            MlmdClient::new("https://mlmd:443", token.clone(), timeout)
                .unwrap_err()
                .is_permanent()
        );
        assert!(
            MlmdClient::new("not an address", token, timeout)
                .unwrap_err()
                .is_permanent()
        );
    }

    #[test]
    fn statuses_map_to_error_classes() {
        let m = methods::GET_ARTIFACTS_BY_ID;
        for code in [
            Code::Unavailable,
            Code::DeadlineExceeded,
            Code::Internal,
            Code::Unauthenticated,
        ] {
            let err = status_error(m, &tonic::Status::new(code, "x"));
            assert!(matches!(err, ProviderError::Transient(_)), "{code:?}: {err:?}");
        }
        assert!(status_error(m, &tonic::Status::not_found("x")).is_not_found());
        assert!(status_error(m, &tonic::Status::invalid_argument("x")).is_permanent());
        let message = status_error(m, &tonic::Status::unavailable("down")).to_string();
        assert!(
            message.contains("GetArtifactsByID") && message.contains("down"),
            "{message}"
        );
    }
}
