//! Shared test helpers: a webhook listener that records what the provider service sends, and an
//! `EventSource` fed by it, so the conformance kit can check events that travelled over real HTTP.

#![allow(dead_code, clippy::unwrap_used)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use kfp_core::event::RunCompletionEventData;
use kfp_core::provider::{DeliveryOutcome, DeliveryReceipt, EventDelivery, EventSource, ProviderError};
use tokio::sync::mpsc;

/// One POST the webhook received.
#[derive(Debug, Clone)]
pub struct Received {
    pub authorization: Option<String>,
    pub content_type: Option<String>,
    pub body: serde_json::Value,
    pub answered: u16,
}

#[derive(Clone)]
struct WebhookState {
    script: Arc<Mutex<VecDeque<u16>>>,
    received: Arc<Mutex<Vec<Received>>>,
    events: mpsc::UnboundedSender<RunCompletionEventData>,
}

/// A test operator feed on loopback: answers POST /events with the scripted statuses (then 200), records every
/// request, and passes every event it answered 200 for to its [`WebhookEvents`].
pub struct Webhook {
    pub url: String,
    pub received: Arc<Mutex<Vec<Received>>>,
}

pub async fn webhook(script: &[u16]) -> (Webhook, WebhookEvents) {
    let (tx, rx) = mpsc::unbounded_channel();
    let state = WebhookState {
        script: Arc::new(Mutex::new(script.iter().copied().collect())),
        received: Arc::new(Mutex::new(Vec::new())),
        events: tx,
    };
    let received = state.received.clone();
    let app = Router::new().route("/events", post(receive)).with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (
        Webhook {
            url: format!("http://{addr}/events"),
            received,
        },
        WebhookEvents { events: rx },
    )
}

async fn receive(State(state): State<WebhookState>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let status = state.script.lock().unwrap().pop_front().unwrap_or(200);
    let header = |name: &str| headers.get(name).map(|v| v.to_str().unwrap().to_string());
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    state.received.lock().unwrap().push(Received {
        authorization: header("authorization"),
        content_type: header("content-type"),
        body: body.clone(),
        answered: status,
    });
    if let (200, Ok(event)) = (status, serde_json::from_value(body)) {
        let _ = state.events.send(event);
    }
    StatusCode::from_u16(status).unwrap()
}

/// The events a [`Webhook`] accepted, as an `EventSource` (settling is a no-op).
pub struct WebhookEvents {
    events: mpsc::UnboundedReceiver<RunCompletionEventData>,
}

#[async_trait::async_trait]
impl EventSource for WebhookEvents {
    async fn next_event(&mut self) -> Result<Option<EventDelivery>, ProviderError> {
        Ok(self.events.recv().await.map(|event| EventDelivery {
            receipt: DeliveryReceipt(event.run_id.clone()),
            event,
        }))
    }

    async fn settle(&mut self, _: DeliveryReceipt, _: DeliveryOutcome) -> Result<(), ProviderError> {
        Ok(())
    }
}

/// The conformance fixtures of the Kubeflow Pipelines provider: KFP refuses a spec that is not a pipeline (the kit's
/// default is a bare TFX wrapper) and parameters the pipeline does not declare (KFP 2.0.5, measured; the fake
/// too), so the kit runs `compiled` (the example `add_pipeline`) with its input `a`, after creating the pipeline
/// and experiment its runs need.
pub fn kfp_conformance_fixtures(
    compiled: serde_json::Value,
) -> kfp_providers::conformance::ConformanceFixtures {
    let mut fixtures = kfp_providers::conformance::ConformanceFixtures {
        prepare_dependencies: true,
        ..Default::default()
    };
    fixtures.pipeline.pipeline_definition["framework"] = serde_json::json!({"name": "kfpsdk", "parameters": {"pipeline": "getting_started.pipeline.add_pipeline"}});
    fixtures.pipeline.compiled_pipeline = compiled;
    let parameters: std::collections::BTreeMap<String, String> =
        [("a".to_string(), "0.1".to_string())].into();
    fixtures.run.parameters = parameters.clone();
    fixtures.run_schedule.parameters = parameters;
    fixtures
}
