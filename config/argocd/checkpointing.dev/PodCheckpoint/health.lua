-- Argo CD health check for checkpointing.dev/PodCheckpoint.
-- A PodCheckpoint is a one-shot resource: Pending and Running are
-- Progressing, Succeeded is Healthy, Failed is Degraded with the operator's
-- sentence (reason: message). See docs/gitops.md.
local hs = {}
hs.status = "Progressing"
hs.message = "Waiting for the PodCheckpoint controller"

if obj.status == nil or obj.status.phase == nil or obj.status.phase == "" then
  return hs
end

-- A status that answers an older spec says nothing about this one.
if obj.metadata ~= nil and obj.metadata.generation ~= nil and obj.status.observedGeneration ~= nil
    and obj.status.observedGeneration < obj.metadata.generation then
  hs.message = "Waiting for the controller to observe generation " .. tostring(obj.metadata.generation)
  return hs
end

local function reason_of(kind)
  if obj.status.conditions ~= nil then
    for _, c in ipairs(obj.status.conditions) do
      if c.type == kind and c.status == "True" and c.reason ~= nil and c.reason ~= "" then
        return c.reason
      end
    end
  end
  return nil
end

local phase = obj.status.phase
local message = obj.status.message
if message == nil or message == "" then
  message = phase
end

if phase == "Pending" or phase == "Running" then
  hs.status = "Progressing"
  hs.message = message
elseif phase == "Succeeded" then
  hs.status = "Healthy"
  hs.message = message
elseif phase == "Failed" then
  hs.status = "Degraded"
  local reason = reason_of("Stalled")
  if reason ~= nil then
    hs.message = reason .. ": " .. message
  else
    hs.message = message
  end
else
  hs.status = "Unknown"
  hs.message = "Unknown phase " .. tostring(phase)
end
return hs
