-- wrk script used by bench/lib/load.py.
-- It changes nothing about the requests; at the end of the run it prints one
-- line "BENCH-SUMMARY {json}" with the request count, the error counters and
-- latency percentiles in microseconds, so that the caller does not have to
-- parse wrk's human-readable output.

local function field(name, value, fmt)
  return string.format('"%s":' .. (fmt or "%d"), name, value)
end

done = function(summary, latency, requests)
  local e = summary.errors
  local parts = {
    field("requests", summary.requests),
    field("duration_us", summary.duration),
    field("bytes", summary.bytes),
    field("err_connect", e.connect),
    field("err_read", e.read),
    field("err_write", e.write),
    field("err_status", e.status),
    field("err_timeout", e.timeout),
    field("lat_min_us", latency.min),
    field("lat_max_us", latency.max),
    field("lat_mean_us", latency.mean, "%.2f"),
    field("lat_stdev_us", latency.stdev, "%.2f"),
  }
  for _, q in ipairs({50, 75, 90, 99, 99.9}) do
    local key = string.format("p%s_us", tostring(q):gsub("%.", "_"))
    parts[#parts + 1] = field(key, latency:percentile(q))
  end
  io.write("BENCH-SUMMARY {" .. table.concat(parts, ",") .. "}\n")
end
