-- The server side of scripts/bench (tests/bench/stelar_bench.c drives it).
-- Ports come from PORT and TCP_PORT (0 = the OS picks; the bench reads the
-- "listening on port N" log lines). Limits that protect a public server
-- would throttle or refuse the load itself, so they are raised or off:
-- no rate limit, connection limits above the idle workload's 19,000.
local stelar = require("stelar")

-- busyPoll from BUSY_POLL (microseconds or "false", scripts/bench); absent
-- otherwise (the default), so that older builds run this script.
local busy_poll = tonumber(os.getenv("BUSY_POLL"))
if os.getenv("BUSY_POLL") == "false" then busy_poll = false end

local server = stelar.server {
  host = "127.0.0.1",
  port = tonumber(os.getenv("PORT")) or 0,
  tcpPort = tonumber(os.getenv("TCP_PORT")) or 0,
  rateLimit = false,
  maxConnections = 100000,
  maxConnectionsPerIP = 100000,
  busyPoll = busy_poll,
  -- scripts/bench --cluster: nodes of one cluster over the Redis it started.
  cluster = os.getenv("REDIS_URL") and { redis = os.getenv("REDIS_URL"), nodeId = os.getenv("NODE_ID") } or nil,
}

server:on("echo", function(ctx)
  ctx:emit("echo", ctx.data)
end)

server:onAck("echoAck", function(ctx)
  return ctx.data
end)

-- fanout: every receiver in the room gets it (ctx:to skips the sender),
-- and the sender gets "sent", which is how it keeps a bounded window.
server:on("shout", function(ctx)
  ctx:to("bench", "shout", ctx.data)
  ctx:emit("sent", true)
end)

server:start()
