-- wrk script for tests/perf/run.py: spreads one scenario's requests over users and tasks.
-- wrk -s load.lua URL -- SCENARIO USERS_FILE [MCP_PROTOCOL_VERSION]
-- USERS_FILE has one line per user: "token first_task_id last_task_id deep_cursor".
-- done() prints one line, "PERF-RESULT {json}", which bench.py reads; any answer that is not
-- 2xx is counted (wrk itself only counts statuses over 399), since a run with errors is no result,
-- and so is a 2xx that is no success: an MCP answer that is not a tool's result (a tool error
-- or a JSON-RPC error, which MCP answers with 200), a chat turn whose tool call did not succeed.

local threads = {}
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("thread_number", counter)
  table.insert(threads, thread)
end

local scenario
local users = {}
local sequence = 0
non2xx = 0
failed = 0
-- Requests sent, answered or not: those still in flight when wrk stops are served anyway.
sent = 0
statuses = ""
local seen = {}

function init(args)
  scenario = args[1]
  -- What a stateless Streamable HTTP client sends: no `initialize` first (the MCP door runs
  -- stateless, todo_api/mcp/server.py), the answer types and the negotiated version.
  local mcp_version = args[3] or "2025-06-18"
  for line in io.lines(args[2]) do
    local token, first, last, cursor = line:match("^(%S+) (%d+) (%d+) (%S+)$")
    users[#users + 1] = {
      headers = {["Authorization"] = "Bearer " .. token},
      json = {["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json"},
      mcp = {
        ["Authorization"] = "Bearer " .. token,
        ["Content-Type"] = "application/json",
        ["Accept"] = "application/json, text/event-stream",
        ["MCP-Protocol-Version"] = mcp_version,
      },
      first = tonumber(first),
      last = tonumber(last),
      deep = "/api/tasks?limit=50&cursor=" .. cursor,
    }
  end
  -- Each thread its own sequence, so that threads do not send the same requests in step.
  math.randomseed(os.time() * 100 + thread_number)
end

local function any_task(user)
  return math.random(user.first, user.last)
end

local builders = {
  list = function(user)
    return wrk.format("GET", "/api/tasks?limit=50", user.headers)
  end,
  deep = function(user)
    return wrk.format("GET", user.deep, user.headers)
  end,
  get = function(user)
    return wrk.format("GET", "/api/tasks/" .. any_task(user), user.headers)
  end,
  create = function(user)
    sequence = sequence + 1
    local body = '{"title": "Benchmark task ' .. sequence .. '", "priority": "high", "tags": ["bench"]}'
    return wrk.format("POST", "/api/tasks", user.json, body)
  end,
  patch = function(user)
    sequence = sequence + 1
    local body = '{"title": "Renamed ' .. sequence .. '"}'
    return wrk.format("PATCH", "/api/tasks/" .. any_task(user), user.json, body)
  end,
  toggle = function(user)
    return wrk.format("POST", "/api/tasks/" .. any_task(user) .. "/complete", user.headers)
  end,
}

-- The MCP door's tool calls, each a JSON-RPC `tools/call` doing what a REST scenario does.
local function tool_call(user, name, arguments)
  sequence = sequence + 1
  local body = '{"jsonrpc": "2.0", "id": ' .. sequence .. ', "method": "tools/call", ' ..
    '"params": {"name": "' .. name .. '", "arguments": ' .. arguments .. '}}'
  return wrk.format("POST", "/api/mcp", user.mcp, body)
end
builders["mcp-add"] = function(user)
  local arguments = '{"title": "Benchmark task ' .. (sequence + 1) ..
    '", "priority": "high", "tags": ["bench"]}'
  return tool_call(user, "add_task", arguments)
end
builders["mcp-list"] = function(user)
  return tool_call(user, "list_tasks", '{"limit": 50}')
end
-- A chat turn that makes the fake model (tests/fake_openai.py) call add_task: a new
-- conversation each time, as a first message is.
builders["chat-add"] = function(user)
  sequence = sequence + 1
  local body = '{"message": "add Benchmark task ' .. sequence .. '"}'
  return wrk.format("POST", "/api/chat", user.json, body)
end

-- Whether a 2xx answer of the scenario is a success.
local function succeeded(body)
  if scenario == "mcp-add" or scenario == "mcp-list" then
    return body:find('"isError":false', 1, true) ~= nil
  elseif scenario == "chat-add" then
    return body:find('"outcome"%s*:%s*"ok"') ~= nil
  end
  return true
end

-- 80 % reads, 20 % writes.
local mix = {
  {40, builders.get}, {30, builders.list}, {10, builders.deep},
  {10, builders.patch}, {5, builders.toggle}, {5, builders.create},
}
builders.mix = function(user)
  local roll = math.random(100)
  for _, entry in ipairs(mix) do
    roll = roll - entry[1]
    if roll <= 0 then
      return entry[2](user)
    end
  end
end

function request()
  sent = sent + 1
  return builders[scenario](users[math.random(#users)])
end

function response(status, headers, body)
  local bad = nil
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
    bad = tostring(status)
  elseif not succeeded(body) then
    failed = failed + 1
    bad = status .. " failed"
  end
  if bad then
    seen[bad] = (seen[bad] or 0) + 1
    local parts = {}
    for code, count in pairs(seen) do
      parts[#parts + 1] = code .. ":" .. count
    end
    statuses = table.concat(parts, ",")
  end
end

function done(summary, latency, requests)
  local bad, no_success, all_sent, codes = 0, 0, 0, {}
  for _, thread in ipairs(threads) do
    all_sent = all_sent + thread:get("sent")
    bad = bad + thread:get("non2xx")
    no_success = no_success + thread:get("failed")
    local text = thread:get("statuses")
    if text ~= "" then
      codes[#codes + 1] = text
    end
  end
  local e = summary.errors
  io.write(string.format(
    'PERF-RESULT {"requests": %d, "duration_us": %d, "bytes": %d, "sent": %d, ' ..
    '"non2xx": %d, "failed": %d, ' ..
    '"statuses": "%s", "errors": {"connect": %d, "read": %d, "write": %d, "timeout": %d}, ' ..
    '"latency_us": {"mean": %.1f, "p50": %d, "p90": %d, "p99": %d, "max": %d}}\n',
    summary.requests, summary.duration, summary.bytes, all_sent, bad, no_success, table.concat(codes, ","),
    e.connect, e.read, e.write, e.timeout,
    latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max))
end
