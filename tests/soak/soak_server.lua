-- The server of the soak test (scripts/soak, tests/soak/soak.js): both
-- transports on ports the OS picks (read from the "listening on port N"
-- log lines), no rate limit and connection limits far above the churn, and
-- handlers that touch what a connection owns: a room joined on connect, a
-- room the client asks for, echoes, room messages, ACKs and metadata.
local stelar = require("stelar")

local server = stelar.server {
  port = 0,
  tcpPort = 0,
  host = "127.0.0.1",
  rateLimit = false,
  maxConnections = 100000,
  maxConnectionsPerIP = 100000,
  maxRooms = 100000,
  connectTimeout = 5000,
}

server:onConnection(function(ctx)
  ctx:joinRoom("everyone")
  ctx:setMetadata("joined", stelar.now())
end)

server:on("echo", function(ctx)
  ctx:emit("echo", ctx.data)
end)

server:on("chat", function(ctx)
  ctx:to(ctx.data.room, "chat", ctx.data)
end)

server:onAck("whoami", function(ctx)
  return { id = ctx.id, rooms = ctx.clientInfo.rooms }
end)

-- The driver's probe: a full collection first, so that luaHeap is what is
-- live rather than what the collector has not reached yet.
server:onAck("stats", function()
  collectgarbage("collect")
  collectgarbage("collect")
  return server:getStats()
end)

server:start()
