-- Argo CD health check for every kind of pipelines.kubeflow.org (Pipeline, Run, RunConfiguration, RunSchedule,
-- Experiment, Provider), in any served version. Install: docs/gitops.md. Tested by
-- crates/kfp-operator/tests/packaging/argocd_health.rs (Lua 5.1, the dialect of Argo CD's gopher-lua).
--
-- The synchronization state (v1beta1/v1alpha6: the reason of the Synchronized condition; v1alpha5: also
-- status.synchronizationState) decides:
--   Succeeded                         Healthy (a Run that finished with completionState Failed: Degraded)
--   Failed                            Degraded, with the condition's message
--   Pending                           Suspended: waiting for an input (a pipeline version, a dependency's run)
--   Creating, Updating, Deleting, ... Progressing
-- A status older than the spec (observedGeneration < generation) or none yet is Progressing.
local hs = {}

local function synchronized(status)
  if status.conditions ~= nil then
    for _, condition in ipairs(status.conditions) do
      if condition.type == "Synchronized" then
        return condition.reason, condition.message
      end
    end
  end
  return status.synchronizationState, status.message
end

if obj.status == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to reconcile it"
  return hs
end

local generation = obj.metadata.generation
local observed = obj.status.observedGeneration
if generation ~= nil and observed ~= nil and observed < generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to reconcile generation " .. tostring(generation)
  return hs
end

local state, message = synchronized(obj.status)
if message == nil or message == "" then
  message = state
end

if state == "Succeeded" then
  if obj.status.completionState == "Failed" then
    hs.status = "Degraded"
    hs.message = "The run finished with completionState Failed"
  else
    hs.status = "Healthy"
    hs.message = "Succeeded"
  end
elseif state == "Failed" then
  hs.status = "Degraded"
  hs.message = message
elseif state == "Pending" then
  hs.status = "Suspended"
  hs.message = message
elseif state == nil or state == "" then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to reconcile it"
else
  hs.status = "Progressing"
  hs.message = message
end
return hs
