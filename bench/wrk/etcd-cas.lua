-- CAS on etcd: POST /v3/kv/txn comparing mod_revision, put on success; both branches end with a
-- range of the key so the answer names the key and its new mod_revision (raftkv's 200 and 412
-- answers carry the same). Args as raftkv-cas.lua; keys are base64 in the gateway's JSON.
dofile(os.getenv('BENCH_WRK_DIR') .. '/common.lua')
function caskey(s) return b64('cas-' .. s) end
dofile(os.getenv('BENCH_WRK_DIR') .. '/cas-common.lua')
local v64 = nil
function request()
  v64 = v64 or b64(VALUE)
  local k = takekey() or caskey(string.format('%s%02dx%09d', RUN, tid, math.random(1, 1e9)))
  -- mod_revision 0 = the key does not exist (create-only); shared keys start from a guess that fails
  local rev = known[k] or (MODE == 'own' and '0' or '1')
  local range = '{"request_range":{"key":"' .. k .. '"}}'
  local body = '{"compare":[{"key":"' .. k .. '","target":"MOD","result":"EQUAL","mod_revision":"' .. rev .. '"}],'
    .. '"success":[{"request_put":{"key":"' .. k .. '","value":"' .. v64 .. '"}},' .. range .. '],'
    .. '"failure":[' .. range .. ']}'
  return wrk.format('POST', '/v3/kv/txn', { ['Content-Type'] = 'application/json' }, body)
end
function response(status, headers, b)
  local k = b:match('"kvs":%[{"key":"([^"]+)"')
  local rev = b:match('"mod_revision":"(%d+)"')
  if status ~= 200 then other = other + 1
  elseif b:find('"succeeded":true') then ok = ok + 1
  else pf = pf + 1 end
  if k and rev then known[k] = rev end
  givekey(k)
end
