-- GET /keys?prefix=<prefix>&limit=1000 (linearizable by default). Args: run tag, read keys, prefix.
dofile(os.getenv('BENCH_WRK_DIR') .. '/common.lua')
function request()
  return wrk.format('GET', '/keys?prefix=' .. LIST_PREFIX .. '&limit=1000')
end
local baseInit = init
function init(args) baseInit(args); LIST_PREFIX = args[3] or 'list/' end
