-- Shared by the bench scripts: per-thread ids so keys are distinct across wrk threads, and base64
-- for etcd's JSON gateway. wrk loads one script per run; each script dofile()s this one.
local b64chars = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'
function b64(data)
  return ((data:gsub('.', function(x)
    local r, b = '', x:byte()
    for i = 8, 1, -1 do r = r .. (b % 2 ^ i - b % 2 ^ (i - 1) > 0 and '1' or '0') end
    return r
  end) .. '0000'):gsub('%d%d%d?%d?%d?%d?', function(x)
    if #x < 6 then return '' end
    local c = 0
    for i = 1, 6 do c = c + (x:sub(i, i) == '1' and 2 ^ (6 - i) or 0) end
    return b64chars:sub(c + 1, c + 1)
  end) .. ({ '', '==', '=' })[#data % 3 + 1])
end
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set('tid', threads)
end
-- BENCH_VALUE_BYTES (default 100) sets the size of written values; BENCH_VALUE_B64_FILE holds its base64 (etcd).
VALUE = string.rep('v', tonumber(os.getenv('BENCH_VALUE_BYTES') or '100'))
-- a distinct 16-byte key per request: run tag (1 char), thread (2 digits), counter (13 digits)
function nextkey()
  counter = (counter or 0) + 1
  return string.format('%s%02d%013d', RUN, tid, counter)
end
-- one of the READ_KEYS prepopulated keys, 16 bytes
function readkey()
  return string.format('r%015d', math.random(1, READ_KEYS))
end
function init(args)
  RUN = args[1] or 'a'
  READ_KEYS = tonumber(args[2] or '1000')
  math.randomseed(tid * 7919)
end
