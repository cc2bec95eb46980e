dofile(os.getenv('BENCH_WRK_DIR') .. '/common.lua')
local v64 = nil
function request()
  if v64 == nil then
    local f = os.getenv('BENCH_VALUE_B64_FILE')
    if f then local h = io.open(f, 'r'); v64 = h:read('*a'); h:close() else v64 = b64(VALUE) end
  end
  return wrk.format('POST', '/v3/kv/put', { ['Content-Type'] = 'application/json' }, '{"key":"' .. b64(nextkey()) .. '","value":"' .. v64 .. '"}')
end
