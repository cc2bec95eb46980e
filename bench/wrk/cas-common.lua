-- Shared by the CAS scripts (raftkv-cas.lua, etcd-cas.lua). Loaded after common.lua.
-- Mode 'own' (uncontended): thread t owns KEYS keys and hands each to one connection at a time (a key
-- goes back to the free list when its answer arrives, so no two requests on one key overlap).
-- Mode 'shared' (contended): every connection picks one of KEYS keys shared by all threads at random.
-- Either way the next request on a key carries the index/revision learnt from the last answer about
-- it (200 or 412). Counts: ok (applied), pf (precondition failed: 412 / succeeded=false), other.
local threadList = {}
local baseSetup = setup
function setup(thread)
  baseSetup(thread)
  table.insert(threadList, thread)
end
local baseInit = init
function init(args)
  baseInit(args)
  MODE = args[3] or 'own'
  KEYS = tonumber(args[4] or '32')
  ok, pf, other = 0, 0, 0
  known = {}
  free = {}
  if MODE == 'own' then
    for i = KEYS, 1, -1 do table.insert(free, caskey(string.format('%s%02d%05d', RUN, tid, i))) end
  end
end
-- the key for the next request, or nil for 'own' mode when (unexpectedly) every key is in flight
function takekey()
  if MODE == 'own' then return table.remove(free) end
  return caskey(string.format('%sshared%03d', RUN, math.random(1, KEYS)))
end
function givekey(k)
  if MODE == 'own' and k then table.insert(free, k) end
end
function done(summary, latency, requests)
  local o, p, x = 0, 0, 0
  for _, t in ipairs(threadList) do
    o = o + t:get('ok'); p = p + t:get('pf'); x = x + t:get('other')
  end
  io.write(string.format('CAS ok=%d precondition_failed=%d other=%d\n', o, p, x))
end
