dofile(os.getenv('BENCH_WRK_DIR') .. '/common.lua')
function request()
  return wrk.format('GET', '/key/' .. readkey() .. (os.getenv('BENCH_QUERY') or ''))
end
