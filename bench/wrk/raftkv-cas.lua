-- CAS on raftkv: PUT /key/:key with If-Match: "<index>" (If-None-Match: * the first time a key of
-- its own is written). Args: run tag, read keys, mode (own|shared), keys. See cas-common.lua.
dofile(os.getenv('BENCH_WRK_DIR') .. '/common.lua')
function caskey(s) return 'cas-' .. s end
dofile(os.getenv('BENCH_WRK_DIR') .. '/cas-common.lua')
local body = '{"value":"' .. string.rep('v', 100) .. '"}'
function request()
  local k = takekey() or caskey(string.format('%s%02dx%09d', RUN, tid, math.random(1, 1e9)))
  local idx = known[k]
  local h = { ['Content-Type'] = 'application/json' }
  if idx then h['If-Match'] = '"' .. idx .. '"'
  elseif MODE == 'own' then h['If-None-Match'] = '*'
  else h['If-Match'] = '"1"' end
  return wrk.format('PUT', '/key/' .. k, h, body)
end
function response(status, headers, b)
  local etag = headers['ETag'] or headers['etag'] or headers['Etag']
  local idx = etag and etag:match('"(%d+)"')
  local k
  if status == 200 then
    ok = ok + 1
    k = b:match('^{"([^"]+)"')
  elseif status == 412 then
    pf = pf + 1
    k = b:match('"current":{"key":"([^"]+)"')
  else
    other = other + 1
  end
  if k and idx then known[k] = idx end
  givekey(k)
end
