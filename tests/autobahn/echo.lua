-- Raw-mode echo server for the Autobahn|Testsuite fuzzing client
-- (scripts/autobahn): every text message comes back as text, every binary
-- message as binary. Limits are raised so that the suite's 16 MiB messages
-- (groups 9.x) fit; PORT picks the port (default 9001), COMPRESSION=1 turns
-- permessage-deflate on (groups 12 and 13).
local stelar = require("stelar")

local server = stelar.server {
  port = tonumber(os.getenv("PORT")) or 9001,
  host = "127.0.0.1",
  rateLimit = false,
  maxPayloadSize = 64 * 1024 * 1024,
  maxFrameSize = 64 * 1024 * 1024,
  maxBufferedBytes = 256 * 1024 * 1024,
  compression = os.getenv("COMPRESSION") == "1",
}

server:onMessage(function(ctx, message, isBinary)
  ctx:send(message, isBinary)
end)

server:start()
