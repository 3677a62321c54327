-- wrk script for `loupe serve` benchmarks: POSTs the files named after "--" in turn, each
-- connection cycling through them. The Content-Type comes from the first file's extension
-- (.png → image/png, anything else → application/octet-stream). Prints one JSON summary line.
--   wrk -t1 -c64 -d10s -s predict.lua http://127.0.0.1:8080/predict -- a.png b.png
local payloads, contentType, counter = {}, "application/octet-stream", 0

function init(args)
  for _, path in ipairs(args) do
    local f = assert(io.open(path, "rb"))
    payloads[#payloads + 1] = f:read("*a")
    f:close()
  end
  if args[1] and args[1]:match("%.png$") then contentType = "image/png" end
end

function request()
  counter = counter + 1
  return wrk.format("POST", nil, {["Content-Type"] = contentType}, payloads[(counter % #payloads) + 1])
end

function done(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status + summary.errors.timeout
  io.write(string.format('{"requests":%d,"seconds":%.3f,"rps":%.1f,"p50_us":%d,"p99_us":%d,"max_us":%d,"errors":%d}\n',
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(99), latency.max, errors))
end
