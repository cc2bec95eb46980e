-- Shared by raftkv-keepalive.lua and etcd-keepalive.lua. Loaded after common.lua.
-- Args: a comma-separated list of lease ids; each connection's next request renews the next id.
-- KEEPALIVE bad=N counts answers that did not renew (a status other than 200, or etcd's answer without a TTL).
local threadList = {}
local baseSetup = setup
function setup(thread)
  baseSetup(thread)
  table.insert(threadList, thread)
end
function init(args)
  ids = {}
  for id in string.gmatch(args[1] or '', '[^,]+') do table.insert(ids, id) end
  nextid = tid
  bad = 0
end
function takeid()
  nextid = nextid % #ids + 1
  return ids[nextid]
end
function done(summary, latency, requests)
  local b = 0
  for _, t in ipairs(threadList) do b = b + t:get('bad') end
  io.write(string.format('KEEPALIVE bad=%d\n', b))
end
