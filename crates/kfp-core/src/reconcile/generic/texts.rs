//! The texts of the state machine: Event messages, condition messages, failure suffixes.

use super::*;

/// The event message (docs/controllers.md, "Events and metrics"): `<State> [version: "<v>"]: <message>`, the bracket
/// only with a version and the colon part only with a message.
pub fn event_message(state: SynchronizationState, version: &str, message: &str) -> String {
    let mut text = state.as_str().to_string();
    if !version.is_empty() {
        text.push_str(&format!(" [version: \"{version}\"]"));
    }
    if !message.is_empty() {
        text.push_str(": ");
        text.push_str(message);
    }
    text
}

/// The event for a status write (docs/controllers.md, "Events and metrics").
pub fn state_event(state: SynchronizationState, version: &str, message: &str) -> Event {
    let (type_, reason) = match state {
        SynchronizationState::Failed => (EventType::Warning, reasons::SYNC_FAILED),
        SynchronizationState::Succeeded | SynchronizationState::Deleted => {
            (EventType::Normal, reasons::SYNCED)
        }
        _ => (EventType::Normal, reasons::SYNCING),
    };
    Event {
        type_,
        reason: reason.to_string(),
        message: event_message(state, version, message),
    }
}

/// Condition messages of the state machine (docs/platform-guide.md, "Condition messages").
pub mod messages {
    /// The Provider that holds the object is not the one it names.
    pub const PROVIDER_CHANGED: &str = "the provider has changed";
    /// `Creating` without a version (a status edited by hand).
    pub const CREATING_EMPTY_VERSION: &str = "creating resource with empty version";
    /// `Updating` without a version or provider id (a status edited by hand).
    pub const UPDATING_EMPTY_VERSION_OR_ID: &str = "updating resource with empty version or providerId";
    /// The workflow finished without a readable provider answer.
    pub const UNREADABLE_OUTPUT: &str = "could not retrieve workflow output";
    /// A create or update answered no id.
    pub const ID_EMPTY: &str = "id was empty";
    /// A delete answered an id.
    pub const ID_NOT_EMPTY: &str = "id should be empty";
    /// The operation failed (the provider's or the workflow's message follows).
    pub const OPERATION_FAILED: &str = "operation failed";
    /// No operation is known for the in-flight state (the executor lost it).
    pub const PROGRESS_UNKNOWN: &str = "operation progress unknown";
}

/// Text appended to a failure message (decision 0002, "Retries").
pub fn permanent_suffix() -> &'static str {
    " (permanent failure: waiting for a spec change)"
}

/// Text appended to a transient failure's message: the attempt and when the next one is (decision 0002, "Retries").
pub fn transient_suffix(attempt: u32, next: &Time) -> String {
    format!(
        " (transient failure, attempt {attempt}: next attempt at {})",
        next.0
    )
}
