dofile(os.getenv('BENCH_WRK_DIR') .. '/common.lua')
dofile(os.getenv('BENCH_WRK_DIR') .. '/keepalive-common.lua')
function request()
  return wrk.format('POST', '/leases/' .. takeid() .. '/keepalive', { ['Content-Type'] = 'application/json' }, '')
end
function response(status, headers, body)
  if status ~= 200 then bad = bad + 1 end
end
