-- wrk script for figure 1 (and its nginx ceiling): POST a 100-byte JSON body
-- on every keep-alive connection as fast as the answers come back.
--
-- Every response goes through response(): it counts the 202s (only those
-- count as durable submits/s) and keeps a uniform random sample
-- ($BENCH_IDS_KEEP, default 100) of their Location headers, which done()
-- appends as ids to $BENCH_IDS_OUT so the suite can check they exist.
-- The nginx ceiling runs the same script, so both pay the same client cost.
local common = dofile((os.getenv("BENCH_LUA_DIR") or "bench/lua") .. "/common.lua")

local body_bytes = tonumber(os.getenv("BENCH_BODY_BYTES") or "100")
local head, tail = '{"bench":"acceptd","pad":"', '"}'  -- as bench/loadgen JsonPayload()
wrk.method = "POST"
wrk.path = os.getenv("BENCH_SUBMIT_PATH") or "/v1/queues/echo/jobs?delay=100000"
wrk.body = head .. string.rep("x", body_bytes - #head - #tail) .. tail
wrk.headers["Content-Type"] = "application/json"

local threads = {}
function setup(thread)
  table.insert(threads, thread)
end

-- Per-thread state (globals, so done() can read them with thread:get).
accepted = 0
other = 0
ids = {}
local keep = tonumber(os.getenv("BENCH_IDS_KEEP") or "100")

function init(args)
  math.randomseed(os.time() * 1000 + math.floor(os.clock() * 1e6) % 1000)
end

function response(status, headers, body)
  if status == 202 then
    accepted = accepted + 1
    if accepted <= keep then
      ids[accepted] = headers["Location"] or ""
    else
      local j = math.random(accepted)  -- reservoir sampling
      if j <= keep then ids[j] = headers["Location"] or "" end
    end
  else
    other = other + 1
  end
end

function done(summary, latency, requests)
  local good, bad = 0, 0
  local lines = {}
  for _, t in ipairs(threads) do
    good = good + t:get("accepted")
    bad = bad + t:get("other")
    for _, location in ipairs(t:get("ids")) do
      local id = location:match("/v1/jobs/(%x+)$")
      if id then table.insert(lines, id .. "\n") end
    end
  end
  common.emit(summary, latency, good, string.format(',"not_202":%d', bad))
  local ids_out = os.getenv("BENCH_IDS_OUT")
  if ids_out and ids_out ~= "" then common.append(ids_out, table.concat(lines)) end
end
