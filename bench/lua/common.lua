-- Shared by the wrk scripts: writes one JSON line per figure to $BENCH_OUT
-- (bench/loadgen/report.cc reads them). Loaded with dofile($BENCH_LUA_DIR/common.lua).
local M = {}

M.figure = os.getenv("BENCH_FIGURE") or "wrk"
M.out = os.getenv("BENCH_OUT")

local function append(path, text)
  if path == nil or path == "" then
    io.write(text)
    return
  end
  local f = assert(io.open(path, "a"))
  f:write(text)
  f:close()
end
M.append = append

-- summary/latency are wrk's done() arguments; `good` counts the responses
-- that count as throughput; `extra` is pre-rendered JSON members.
function M.emit(summary, latency, good, extra)
  local seconds = summary.duration / 1e6
  local e = summary.errors
  local detail = string.format(
    '"requests":%d,"good":%d,"seconds":%.3f,"errors":{"connect":%d,"read":%d,"write":%d,' ..
      '"timeout":%d,"status":%d},"latency_ms":{"p50":%.3f,"p99":%.3f,"p99.9":%.3f,"max":%.3f}%s',
    summary.requests, good, seconds, e.connect, e.read, e.write, e.timeout, e.status,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    latency:percentile(99.9) / 1000, latency.max / 1000, extra or "")
  append(M.out, string.format('{"figure":"%s_rps","value":%.3f,%s}\n', M.figure,
                              good / seconds, detail))
  append(M.out, string.format('{"figure":"%s_p99_ms","value":%.3f}\n', M.figure,
                              latency:percentile(99) / 1000))
  append(M.out, string.format('{"figure":"%s_p50_ms","value":%.3f}\n', M.figure,
                              latency:percentile(50) / 1000))
end

return M
