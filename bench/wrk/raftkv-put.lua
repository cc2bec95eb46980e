dofile(os.getenv('BENCH_WRK_DIR') .. '/common.lua')
function request()
  return wrk.format('POST', '/key', { ['Content-Type'] = 'application/json' }, '{"' .. nextkey() .. '":"' .. VALUE .. '"}')
end
