//! The state machine one reconcile runs: from the observed status and the executor's outcomes to the commands.

use super::*;

/// What the executor's outcomes say about the operation the state machine waits for.
enum Awaited {
    Waiting,
    Success {
        id: String,
    },
    Failure {
        class: FailureClass,
        message: String,
        provider_id: Option<String>,
    },
}

/// One reconcile of the generic state machine.
pub(crate) struct Machine<'a> {
    pub kind: ResourceKind,
    pub meta: &'a ObjectMeta,
    pub spec_provider: &'a NamespacedName,
    pub provider: Option<&'a Provider>,
    pub outcomes: &'a [OperationOutcome],
    pub now: &'a Time,
    pub version: String,
    pub finds_by_identity: bool,
}

/// Commands under construction.
pub(crate) struct Out<S> {
    pub commands: Vec<ResourceCommand<S>>,
    pub requeue_after: Option<Duration>,
    status_set: bool,
}

impl<S> Out<S> {
    pub fn new() -> Self {
        Self {
            commands: Vec::new(),
            requeue_after: None,
            status_set: false,
        }
    }

    pub fn push(&mut self, command: ResourceCommand<S>) {
        if matches!(command, ResourceCommand::SetStatus { .. }) {
            self.status_set = true;
        }
        self.commands.push(command);
    }

    pub fn requeue(&mut self, after: Duration) {
        self.requeue_after = Some(self.requeue_after.map_or(after, |r| r.min(after)));
    }

    pub fn into_plan(self) -> Plan<ResourceCommand<S>> {
        Plan {
            commands: self.commands,
            requeue_after: self.requeue_after,
        }
    }
}

fn duration_until(now: &Time, then: &Time) -> Duration {
    let millis = then.0.as_millisecond().saturating_sub(now.0.as_millisecond());
    Duration::from_millis(u64::try_from(millis).unwrap_or(0))
}

fn time_after(now: &Time, after: Duration) -> Time {
    Time(now.0.checked_add(after).unwrap_or(now.0))
}

impl<'a> Machine<'a> {
    pub fn generation(&self) -> i64 {
        self.meta.generation.unwrap_or(0)
    }

    pub fn deleting(&self) -> bool {
        self.meta.deletion_timestamp.is_some()
    }

    pub fn has_finalizer(&self) -> bool {
        self.meta.finalizers.iter().flatten().any(|f| f == FINALIZER)
    }

    fn resource_ref(&self) -> ResourceRef {
        ResourceRef::new(
            self.kind,
            self.meta.namespace.clone().unwrap_or_default(),
            self.meta.name.clone().unwrap_or_default(),
        )
    }

    fn seed(&self) -> String {
        match &self.meta.uid {
            Some(uid) => uid.clone(),
            None => self.resource_ref().namespaced_name().to_string(),
        }
    }

    /// A status write with its condition, observedGeneration and event (docs/controllers.md, "The state machine of
    /// Pipelines, Runs, RunSchedules and Experiments").
    pub fn set_status<S: StatusLike>(
        &self,
        out: &mut Out<S>,
        current: &S,
        state: SynchronizationState,
        message: &str,
        mutate: impl FnOnce(&mut Status),
    ) {
        let mut status = current.clone();
        let generation = self.generation();
        let base = status.base_mut();
        mutate(base);
        base.observed_generation = generation;
        merge_state_conditions(&mut base.conditions, state, message, generation, self.now);
        let event = state_event(state, &base.version, message);
        out.push(ResourceCommand::SetStatus {
            status,
            event: Some(event),
        });
    }

    /// A status write that changes no state (dependency snapshots, completion marks): no event.
    pub fn set_status_quietly<S: StatusLike>(&self, out: &mut Out<S>, status: S) {
        let mut status = status;
        let generation = self.generation();
        let base = status.base_mut();
        base.observed_generation = generation;
        observe_generation(&mut base.conditions, generation);
        out.push(ResourceCommand::SetStatus { status, event: None });
    }

    /// When nothing writes the status but the generation moved, write it to record observedGeneration.
    pub fn finish<S: StatusLike>(&self, mut out: Out<S>, current: &S) -> Plan<ResourceCommand<S>> {
        // A finalizer patch wakes the next reconcile, which writes the status anyway (one write, not two).
        let finalizing = out.commands.iter().any(|c| {
            matches!(
                c,
                ResourceCommand::RemoveFinalizer | ResourceCommand::AddFinalizer
            )
        });
        if out.status_set || finalizing {
            return out.into_plan();
        }
        let base = current.base();
        let state = base.synchronization_state();
        let message = base.synchronized().map(|c| c.message.clone()).unwrap_or_default();
        // A status written before the kstatus conditions existed (an upgrade, the Go operator's objects) gets them
        // once, quietly, so GitOps tools do not read an old `Failed` resource as healthy.
        let lacks_kstatus = base.synchronized().is_some()
            && !base
                .conditions
                .iter()
                .any(|c| c.type_ == crate::reconcile::kstatus::READY);
        if self.generation() != base.observed_generation {
            self.set_status(&mut out, current, state, &message, |_| {});
        } else if lacks_kstatus {
            let mut status = current.clone();
            let generation = self.generation();
            merge_state_conditions(
                &mut status.base_mut().conditions,
                state,
                &message,
                generation,
                self.now,
            );
            out.push(ResourceCommand::SetStatus { status, event: None });
        }
        out.into_plan()
    }

    /// Runs the state machine. `build` produces the create/update definition when one is needed.
    pub fn plan<S: StatusLike>(
        &self,
        current: &S,
        build: &mut dyn FnMut(&Provider) -> Result<Built, BuildError>,
    ) -> Plan<ResourceCommand<S>> {
        let mut out = Out::new();
        self.run(&mut out, current, build);
        self.finish(out, current)
    }

    pub fn run<S: StatusLike>(
        &self,
        out: &mut Out<S>,
        current: &S,
        build: &mut dyn FnMut(&Provider) -> Result<Built, BuildError>,
    ) {
        use SynchronizationState as St;
        let status = current.base();
        let state = status.synchronization_state();
        let id = status.provider.id.as_str();
        let deleting = self.deleting();
        let provider_changed =
            !status.provider.name.is_empty() && status.provider.name != *self.spec_provider;

        if deleting && !self.has_finalizer() {
            return;
        }
        // Without the provider the provider-side object cannot be deleted; let the object go (decision 0002,
        // "Deletion and missing providers").
        if deleting && (self.provider.is_none() || provider_changed) {
            let provider = if provider_changed {
                &status.provider.name
            } else {
                self.spec_provider
            };
            let message = if id.is_empty() {
                format!("the provider {provider} no longer exists; releasing the finalizer")
            } else {
                format!(
                    "the provider {provider} no longer exists; the provider-side resource with id \"{id}\" may be left behind"
                )
            };
            out.push(ResourceCommand::RecordEvent(Event {
                type_: EventType::Warning,
                reason: reasons::PROVIDER_GONE.to_string(),
                message,
            }));
            out.push(ResourceCommand::RemoveFinalizer);
            return;
        }
        let Some(provider) = self.provider else {
            out.requeue(PROVIDER_MISSING_REQUEUE);
            return;
        };
        if !deleting && !self.has_finalizer() {
            // The finalizer alone: nothing reaches the provider until a later reconcile sees it on the object. A
            // DELETE racing the finalizer patch can remove the object finalizer and all (kubernetes#77988); planning
            // the create in the same step left its provider object behind whenever the operator stopped before the
            // DELETED event (docs/reliability.md "Exactly once").
            out.push(ResourceCommand::AddFinalizer);
            return;
        }
        // The provider changed: the first row of the state table (docs/controllers.md, "The state machine of Pipelines,
        // Runs, RunSchedules and Experiments").
        if provider_changed {
            let message = status
                .synchronized()
                .map(|c| c.message.as_str())
                .unwrap_or_default();
            if state != St::Failed || message != messages::PROVIDER_CHANGED {
                self.set_status(out, current, St::Failed, messages::PROVIDER_CHANGED, |_| {});
            }
            return;
        }
        let retry = RetryState::from_meta(self.meta).filter(|r| r.version == self.version);

        match (deleting, state) {
            (_, St::Deleted) => {
                if deleting {
                    out.push(ResourceCommand::RemoveFinalizer);
                }
            }
            (_, St::Deleting) => self.await_delete(out, current, provider, retry.as_ref()),
            (true, St::Creating | St::Updating) => {
                // Let the operation in flight finish (decision 0002, "Deletion and missing providers"); the next
                // reconcile deletes.
                self.await_apply(out, current, state, retry.as_ref());
            }
            (true, St::Unknown | St::Succeeded | St::Failed | St::Pending) => {
                if id.is_empty() && state == St::Failed && self.finds_by_identity {
                    // A create may have reached the provider before its id was lost (a crash, an unknown
                    // outcome): delete by identity (docs/reliability.md "Exactly once").
                    self.submit_delete(out, current, provider, "", true);
                } else if id.is_empty() {
                    self.set_status(out, current, St::Deleted, "", |_| {});
                    out.push(ResourceCommand::RemoveFinalizer);
                } else {
                    self.submit_delete(out, current, provider, id, true);
                }
            }
            (false, St::Unknown | St::Pending) => {
                self.submit_apply(out, current, provider, St::Unknown, build)
            }
            (false, St::Succeeded | St::Failed) => {
                if status.version != self.version {
                    self.submit_apply(out, current, provider, state, build);
                } else if state == St::Failed
                    && let Some(retry) = retry
                {
                    if retry.next_attempt_at.0 <= self.now.0 {
                        self.submit_apply(out, current, provider, state, build);
                    } else {
                        out.requeue(duration_until(self.now, &retry.next_attempt_at));
                    }
                }
            }
            (false, St::Creating) => {
                if status.version.is_empty() {
                    self.set_status(out, current, St::Failed, messages::CREATING_EMPTY_VERSION, |_| {});
                } else {
                    self.await_apply(out, current, state, retry.as_ref());
                }
            }
            (false, St::Updating) => {
                if status.version.is_empty() || id.is_empty() {
                    self.set_status(
                        out,
                        current,
                        St::Failed,
                        messages::UPDATING_EMPTY_VERSION_OR_ID,
                        |_| {},
                    );
                } else {
                    self.await_apply(out, current, state, retry.as_ref());
                }
            }
        }
    }

    fn submit_apply<S: StatusLike>(
        &self,
        out: &mut Out<S>,
        current: &S,
        provider: &Provider,
        from: SynchronizationState,
        build: &mut dyn FnMut(&Provider) -> Result<Built, BuildError>,
    ) {
        use SynchronizationState as St;
        let version = self.version.clone();
        let id = current.base().provider.id.clone();
        match build(provider) {
            Err(error) => {
                if RetryState::from_meta(self.meta).is_some() {
                    out.push(ResourceCommand::SetRetry(None));
                }
                let message = format!("{error}{}", permanent_suffix());
                self.set_status(out, current, St::Failed, &message, |s| s.version = version);
            }
            Ok(Built::Pending(message)) => {
                let unchanged = current.base().synchronization_state() == St::Pending
                    && current
                        .base()
                        .synchronized()
                        .is_some_and(|c| c.message == message)
                    && current.base().version == version
                    && current.base().provider.name == *self.spec_provider;
                if !unchanged {
                    self.set_status(out, current, St::Pending, &message, |s| {
                        s.version = version;
                        self.name_provider(s);
                    });
                }
            }
            Ok(Built::Ready(definition)) => {
                let action = if id.is_empty() {
                    // From Unknown the status is reset to the version alone.
                    let reset = from == St::Unknown;
                    self.set_status(out, current, St::Creating, "", |s| {
                        if reset {
                            *s = Status {
                                conditions: std::mem::take(&mut s.conditions),
                                ..Default::default()
                            };
                        }
                        s.version = version;
                    });
                    Action::Create { definition }
                } else {
                    self.set_status(out, current, St::Updating, "", |s| s.version = version);
                    Action::Update { id, definition }
                };
                out.push(ResourceCommand::Submit(self.operation(action)));
            }
        }
    }

    fn submit_delete<S: StatusLike>(
        &self,
        out: &mut Out<S>,
        current: &S,
        _provider: &Provider,
        id: &str,
        write_status: bool,
    ) {
        if write_status {
            self.set_status(out, current, SynchronizationState::Deleting, "", |_| {});
        }
        out.push(ResourceCommand::Submit(
            self.operation(Action::Delete { id: id.to_string() }),
        ));
    }

    fn operation(&self, action: Action) -> Operation {
        Operation {
            resource: self.resource_ref(),
            provider: self.spec_provider.clone(),
            action,
            version: self.version.clone(),
            created: self.meta.creation_timestamp.clone(),
        }
    }

    /// Awaiting (docs/controllers.md, "The state machine of Pipelines, Runs, RunSchedules and Experiments"), for the
    /// outcomes of a create/update or a delete.
    fn awaited(&self, expect_id: bool) -> Awaited {
        if self.outcomes.iter().any(OperationOutcome::in_progress) {
            return Awaited::Waiting;
        }
        let latest = |succeeded: bool| {
            self.outcomes
                .iter()
                .filter(|o| matches!(o.state, OutcomeState::Succeeded { .. }) == succeeded)
                .max_by(|a, b| a.created.0.cmp(&b.created.0))
        };
        let transient = |message: &str| Awaited::Failure {
            class: FailureClass::Transient,
            message: message.to_string(),
            provider_id: None,
        };
        match (latest(true), latest(false)) {
            (Some(o), _) => match &o.state {
                OutcomeState::Succeeded { output: Err(_) } => transient(messages::UNREADABLE_OUTPUT),
                OutcomeState::Succeeded {
                    output: Ok(ProviderOutput { id, provider_error }),
                } => {
                    if !provider_error.is_empty() {
                        Awaited::Failure {
                            class: FailureClass::Transient,
                            message: provider_error.clone(),
                            provider_id: Some(id.clone()),
                        }
                    } else if expect_id && id.is_empty() {
                        transient(messages::ID_EMPTY)
                    } else if !expect_id && !id.is_empty() {
                        transient(messages::ID_NOT_EMPTY)
                    } else {
                        Awaited::Success { id: id.clone() }
                    }
                }
                _ => transient(messages::OPERATION_FAILED),
            },
            (
                None,
                Some(OperationOutcome {
                    state: OutcomeState::Failed { class, message },
                    ..
                }),
            ) => {
                let message = if message.is_empty() {
                    messages::OPERATION_FAILED.to_string()
                } else {
                    format!("{}: {message}", messages::OPERATION_FAILED)
                };
                Awaited::Failure {
                    class: *class,
                    message,
                    provider_id: None,
                }
            }
            _ => transient(messages::PROGRESS_UNKNOWN),
        }
    }

    fn mark_consumed<S>(&self, out: &mut Out<S>) {
        let keys: Vec<String> = self.outcomes.iter().map(|o| o.key.clone()).collect();
        if !keys.is_empty() {
            out.push(ResourceCommand::MarkConsumed { keys });
        }
    }

    /// Records a failure: the retry state and the message suffix of decision 0002, "Retries".
    fn failure_message<S>(
        &self,
        out: &mut Out<S>,
        class: FailureClass,
        message: &str,
        retry: Option<&RetryState>,
    ) -> String {
        match class {
            FailureClass::Permanent => {
                if RetryState::from_meta(self.meta).is_some() {
                    out.push(ResourceCommand::SetRetry(None));
                }
                format!("{message}{}", permanent_suffix())
            }
            FailureClass::Transient => {
                let attempt = retry.map_or(0, |r| r.attempt).saturating_add(1);
                let delay = retry_delay(attempt, &self.seed());
                let next = time_after(self.now, delay);
                out.push(ResourceCommand::SetRetry(Some(RetryState {
                    version: self.version.clone(),
                    attempt,
                    next_attempt_at: next.clone(),
                })));
                out.requeue(delay);
                format!("{message}{}", transient_suffix(attempt, &next))
            }
        }
    }

    fn clear_retry<S>(&self, out: &mut Out<S>) {
        if RetryState::from_meta(self.meta).is_some() {
            out.push(ResourceCommand::SetRetry(None));
        }
    }

    /// A `Pending` status names the Provider that will run the resource, so the PROVIDER column is not empty while
    /// it waits (issue 19); the id stays empty until the provider created it.
    pub fn name_provider(&self, status: &mut Status) {
        status.provider.name = self.spec_provider.clone();
    }

    fn await_apply<S: StatusLike>(
        &self,
        out: &mut Out<S>,
        current: &S,
        _state: SynchronizationState,
        retry: Option<&RetryState>,
    ) {
        let provider_name = self.spec_provider.clone();
        match self.awaited(true) {
            Awaited::Waiting => return,
            Awaited::Success { id } => {
                self.clear_retry(out);
                self.set_status(out, current, SynchronizationState::Succeeded, "", |s| {
                    s.provider = ProviderAndId {
                        name: provider_name,
                        id,
                    };
                });
            }
            Awaited::Failure {
                class,
                message,
                provider_id,
            } => {
                let message = self.failure_message(out, class, &message, retry);
                self.set_status(out, current, SynchronizationState::Failed, &message, |s| {
                    if let Some(id) = provider_id {
                        s.provider = ProviderAndId {
                            name: provider_name,
                            id,
                        };
                    }
                });
            }
        }
        self.mark_consumed(out);
    }

    /// Deleting: await the delete; on failure stay `Deleting` and retry with backoff (decision 0002, "Deletion and
    /// missing providers").
    fn await_delete<S: StatusLike>(
        &self,
        out: &mut Out<S>,
        current: &S,
        provider: &Provider,
        retry: Option<&RetryState>,
    ) {
        use SynchronizationState as St;
        let provider_name = self.spec_provider.clone();
        if self.outcomes.is_empty()
            && let Some(retry) = retry
        {
            // A failed delete waiting for its next attempt.
            if retry.next_attempt_at.0 <= self.now.0 {
                let id = current.base().provider.id.clone();
                if id.is_empty() && !self.finds_by_identity {
                    self.clear_retry(out);
                    self.set_status(out, current, St::Deleted, "", |_| {});
                    if self.deleting() {
                        out.push(ResourceCommand::RemoveFinalizer);
                    }
                } else {
                    self.submit_delete(out, current, provider, &id, false);
                }
            } else {
                out.requeue(duration_until(self.now, &retry.next_attempt_at));
            }
            return;
        }
        match self.awaited(false) {
            Awaited::Waiting => return,
            Awaited::Success { .. } => {
                self.clear_retry(out);
                self.set_status(out, current, St::Deleted, "", |s| {
                    s.provider = ProviderAndId {
                        name: provider_name,
                        id: String::new(),
                    };
                });
                if self.deleting() {
                    out.push(ResourceCommand::RemoveFinalizer);
                }
            }
            Awaited::Failure { message, .. } => {
                // A failed delete is always retried: it must not park in Deleting.
                let message = self.failure_message(out, FailureClass::Transient, &message, retry);
                self.set_status(out, current, St::Deleting, &message, |_| {});
            }
        }
        self.mark_consumed(out);
    }
}

/// The status, or the default one of an object that has none yet.
pub(crate) fn current_status<S: StatusLike>(status: &Option<S>) -> std::borrow::Cow<'_, S> {
    match status {
        Some(s) => std::borrow::Cow::Borrowed(s),
        None => std::borrow::Cow::Owned(S::default()),
    }
}
