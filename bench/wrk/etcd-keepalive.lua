dofile(os.getenv('BENCH_WRK_DIR') .. '/common.lua')
dofile(os.getenv('BENCH_WRK_DIR') .. '/keepalive-common.lua')
function request()
  return wrk.format('POST', '/v3/lease/keepalive', { ['Content-Type'] = 'application/json' }, '{"ID":"' .. takeid() .. '"}')
end
-- etcd answers 200 for an unknown lease too, without a TTL.
function response(status, headers, body)
  if status ~= 200 or not string.find(body, '"TTL":"', 1, true) then bad = bad + 1 end
end
