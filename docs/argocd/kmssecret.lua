-- Argo CD health of keyhaven.dev/KmsSecret (docs/observability.md). Lua 5.1 (gopher-lua).
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
local ready = condition("Ready")
if ready == nil or ready.status == "Unknown" then
  hs.status = "Progressing"
  hs.message = "Waiting for the keyhaven controller"
  return hs
end
local generation = obj.metadata.generation or 0
if (ready.observedGeneration or 0) < generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the keyhaven controller to apply generation " .. generation
  return hs
end
if ready.status == "True" then
  hs.status = "Healthy"
  hs.message = ready.message or ""
  return hs
end
if ready.reason == "KeyNotReady" then
  hs.status = "Progressing"
  hs.message = "Waiting for its KmsKey: " .. (ready.message or "")
  return hs
end
hs.status = "Degraded"
hs.message = explain(ready)
return hs
