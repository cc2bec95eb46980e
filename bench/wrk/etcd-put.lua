dofile(os.getenv('BENCH_WRK_DIR') .. '/common.lua')
local v64 = nil
function request()
  v64 = v64 or b64(VALUE)
  return wrk.format('POST', '/v3/kv/put', { ['Content-Type'] = 'application/json' }, '{"key":"' .. b64(nextkey()) .. '","value":"' .. v64 .. '"}')
end
