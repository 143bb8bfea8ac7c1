-- Prints wrk's summary as one JSON line; given a file of paths, cycles over them.
local paths = {}
local index = 0

local function cycle()
  index = index % #paths + 1
  return wrk.format(nil, paths[index])
end

function init(args)
  if args[1] == nil then
    return
  end
  for line in io.lines(args[1]) do
    paths[#paths + 1] = line
  end
  request = cycle
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "connect": %d, "read": %d, ' ..
    '"write": %d, "status": %d, "timeout": %d, "p50_us": %d, ' ..
    '"p99_us": %d, "max_us": %d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write,
    e.status, e.timeout, latency:percentile(50), latency:percentile(99),
    latency.max))
end
