-- Cycles over the requests of a file and counts every status and bad body.
--
-- Each line of the file is METHOD<TAB>PATH<TAB>BODY; BODY may be empty. A
-- PUT or PATCH body is sent as application/json. At the end one JSON line
-- holds wrk's summary, its latency percentiles and the counts, for
-- bench/load.py to read.
local requests = {}
local index = 0
local threads = {}

counts = {}
bad_bodies = 0

function setup(thread)
  threads[#threads + 1] = thread
  thread:set("first", #threads)
end

local function load(file)
  for line in io.lines(file) do
    local method, path, body = line:match("^(%u+)\t([^\t]+)\t?(.*)$")
    if method == nil then
      error("bad request line: " .. line)
    end
    local headers = nil
    if body == "" then
      body = nil
    else
      headers = {["Content-Type"] = "application/json"}
    end
    requests[#requests + 1] = wrk.format(method, path, headers, body)
  end
end

function init(args)
  load(args[1])
  -- Threads start at different places, so they do not send the same writes.
  index = (first * 7919) % #requests
end

function request()
  index = index % #requests + 1
  return requests[index]
end

-- A 200 must carry what the method answers: a config, or the update receipt.
local function well_formed(status, body)
  if status ~= 200 then
    return true
  end
  return body:sub(1, 16) == '{"device_type":"'
    or body:sub(1, 20) == '{"status":"updated",'
end

function response(status, headers, body)
  counts[status] = (counts[status] or 0) + 1
  if not well_formed(status, body) then
    bad_bodies = bad_bodies + 1
  end
end

local function merged_counts()
  local total, bad = {}, 0
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("counts")) do
      total[status] = (total[status] or 0) + n
    end
    bad = bad + thread:get("bad_bodies")
  end
  local parts = {}
  for status, n in pairs(total) do
    parts[#parts + 1] = string.format('"%d": %d', status, n)
  end
  return "{" .. table.concat(parts, ", ") .. "}", bad
end

function done(summary, latency, requests)
  local e = summary.errors
  local statuses, bad = merged_counts()
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "bytes": %d, "connect": %d, ' ..
    '"read": %d, "write": %d, "non_2xx": %d, "timeout": %d, "p50_us": %d, ' ..
    '"p90_us": %d, "p99_us": %d, "max_us": %d, "statuses": %s, ' ..
    '"bad_bodies": %d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read,
    e.write, e.status, e.timeout, latency:percentile(50),
    latency:percentile(90), latency:percentile(99), latency.max, statuses, bad))
end
