-- wrk script for tests/perf/run.py: spreads one scenario's requests over users and tasks.
-- wrk -s load.lua URL -- SCENARIO USERS_FILE
-- USERS_FILE has one line per user: "token first_task_id last_task_id deep_cursor".
-- done() prints one line, "PERF-RESULT {json}", which run.py reads; any answer that is not
-- 2xx is counted (wrk itself only counts statuses over 399), since a run with errors is no result.

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
statuses = ""
local seen = {}

function init(args)
  scenario = args[1]
  for line in io.lines(args[2]) do
    local token, first, last, cursor = line:match("^(%S+) (%d+) (%d+) (%S+)$")
    users[#users + 1] = {
      headers = {["Authorization"] = "Bearer " .. token},
      json = {["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json"},
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
  return builders[scenario](users[math.random(#users)])
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
    seen[status] = (seen[status] or 0) + 1
    local parts = {}
    for code, count in pairs(seen) do
      parts[#parts + 1] = code .. ":" .. count
    end
    statuses = table.concat(parts, ",")
  end
end

function done(summary, latency, requests)
  local bad, codes = 0, {}
  for _, thread in ipairs(threads) do
    bad = bad + thread:get("non2xx")
    local text = thread:get("statuses")
    if text ~= "" then
      codes[#codes + 1] = text
    end
  end
  local e = summary.errors
  io.write(string.format(
    'PERF-RESULT {"requests": %d, "duration_us": %d, "bytes": %d, "non2xx": %d, ' ..
    '"statuses": "%s", "errors": {"connect": %d, "read": %d, "write": %d, "timeout": %d}, ' ..
    '"latency_us": {"mean": %.1f, "p50": %d, "p90": %d, "p99": %d, "max": %d}}\n',
    summary.requests, summary.duration, summary.bytes, bad, table.concat(codes, ","),
    e.connect, e.read, e.write, e.timeout,
    latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max))
end
