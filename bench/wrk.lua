-- wrk script of the benchmark: POSTs the file $BODY with Content-Type $CT
-- (and Connect's protocol header when $CONNECT is set). With $DELAY_MS,
-- each connection waits that long before each request (a rate limit: wrk2
-- is not packaged). done() prints one machine-readable RESULT line.
local f = assert(io.open(os.getenv("BODY"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = os.getenv("CT") or "binary/octet-stream"
if os.getenv("CONNECT") then
  wrk.headers["Connect-Protocol-Version"] = "1"
end

local delay_ms = tonumber(os.getenv("DELAY_MS") or "")
if delay_ms and delay_ms > 0 then
  function delay()
    return delay_ms
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  local secs = summary.duration / 1e6
  io.write(string.format(
    "RESULT reqs=%d secs=%.3f rps=%.1f p50_ms=%.3f p99_ms=%.3f bytes=%d errors=%d\n",
    summary.requests, secs, summary.requests / secs,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.bytes, e.connect + e.read + e.write + e.status + e.timeout))
end
