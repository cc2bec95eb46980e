-- Range over a prefix on etcd (linearizable), limit 1000. Args: run tag, read keys, prefix.
dofile(os.getenv('BENCH_WRK_DIR') .. '/common.lua')
local body = nil
local baseInit = init
function init(args)
  baseInit(args)
  local prefix = args[3] or 'list/'
  local rangeEnd = prefix:sub(1, -2) .. string.char(prefix:byte(-1) + 1)
  body = '{"key":"' .. b64(prefix) .. '","range_end":"' .. b64(rangeEnd) .. '","limit":1000}'
end
function request()
  return wrk.format('POST', '/v3/kv/range', { ['Content-Type'] = 'application/json' }, body)
end
