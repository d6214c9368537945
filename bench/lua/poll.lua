-- wrk script for figure 2 (and its nginx ceiling): GET /v1/jobs/{id} for ids
-- picked at random from $BENCH_IDS_FILE (10,000 existing jobs, one per line).
-- Throughput counts 2xx/3xx answers only; a 404 would show as a status error.
local common = dofile((os.getenv("BENCH_LUA_DIR") or "bench/lua") .. "/common.lua")

local requests_by_id = {}

function init(args)
  math.randomseed(os.time() * 1000 + math.floor(os.clock() * 1e6) % 1000)
  local path = assert(os.getenv("BENCH_IDS_FILE"), "set BENCH_IDS_FILE")
  for id in io.lines(path) do
    if #id > 0 then
      table.insert(requests_by_id, wrk.format("GET", "/v1/jobs/" .. id))
    end
  end
  assert(#requests_by_id > 0, "no ids in " .. path)
end

function request()
  return requests_by_id[math.random(#requests_by_id)]
end

function done(summary, latency, requests)
  common.emit(summary, latency, summary.requests - summary.errors.status)
end
