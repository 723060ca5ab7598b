-- Argo CD health of keyhaven.dev/KmsKey (docs/observability.md). Lua 5.1 (gopher-lua).
local hs = {}
local function condition(name)
  if obj.status == nil or obj.status.conditions == nil then return nil end
  for _, c in ipairs(obj.status.conditions) do
    if c.type == name then return c end
  end
  return nil
end
-- "Reason: message", unless the message already starts with the reason.
local function explain(c)
  local m = c.message or ""
  if c.reason == nil or string.sub(m, 1, #c.reason) == c.reason then return m end
  return c.reason .. ": " .. m
end
if obj.status == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the keyhaven controller to create the key"
  return hs
end
if obj.status.keyState == "PendingDeletion" then
  hs.status = "Suspended"
  hs.message = "The key is pending deletion on " .. (obj.status.deletionDate or "its deletion date")
  return hs
end
local generation = obj.metadata.generation or 0
local function current(c)
  return c ~= nil and (c.observedGeneration or 0) >= generation
end
local synced = condition("Synced")
if current(synced) and synced.status == "False" then
  hs.status = "Degraded"
  hs.message = "The spec is not applied: " .. explain(synced)
  return hs
end
local ready = condition("Ready")
if ready == nil or ready.status == "Unknown" then
  hs.status = "Progressing"
  hs.message = "Waiting for the key's Ready condition"
  return hs
end
if not current(ready) then
  hs.status = "Progressing"
  hs.message = "Waiting for the keyhaven controller to apply generation " .. generation
  return hs
end
if ready.status == "True" then
  hs.status = "Healthy"
  hs.message = ready.message or ""
  return hs
end
if ready.reason == "KeyPendingImport" then
  hs.status = "Suspended"
  hs.message = "Waiting for key material to be imported"
  return hs
end
hs.status = "Degraded"
hs.message = explain(ready)
return hs
