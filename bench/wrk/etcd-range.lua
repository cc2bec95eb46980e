dofile(os.getenv('BENCH_WRK_DIR') .. '/common.lua')
local serializable = os.getenv('BENCH_SERIALIZABLE') == '1'
function request()
  local extra = serializable and ',"serializable":true' or ''
  return wrk.format('POST', '/v3/kv/range', { ['Content-Type'] = 'application/json' }, '{"key":"' .. b64(readkey()) .. '"' .. extra .. '}')
end
