-- A chat server: nicknames kept in each client's metadata, rooms, a short
-- history per room that survives hot reloads, and an ACK that lists who is
-- in a room.
--
--   scripts/run lua/examples/chat.lua        (PORT=4000 to move it)
--
-- With REDIS_URL (and NODE_ID) set it is one node of a cluster: run several
-- on one Redis (scripts/cluster-demo starts three) and rooms span them.
-- Nicknames and history stay on the node that saw them.
--
-- Client events:  nick "name" | join "room" | leave "room" | say {room, text}
-- ACK:            members {room} -> {room, members = {{id, nick}, ...}}
local stelar = require("stelar")

local server = stelar.server {
  port = tonumber(os.getenv("PORT")) or 3000,
  tcpPort = tonumber(os.getenv("TCP_PORT")) or false,
  cluster = os.getenv("REDIS_URL") and { redis = os.getenv("REDIS_URL"), nodeId = os.getenv("NODE_ID") } or false,
  heartbeatInterval = 25000,
  heartbeatTimeout = 60000,
}

-- State that must outlive a code change lives in stelar.shared.
local shared = stelar.shared
shared.history = shared.history or {} -- room -> array of messages
shared.nicks = shared.nicks or {}     -- client id -> nickname
local history, nicks = shared.history, shared.nicks
local HISTORY_MAX = 50

local function valid_name(s, max)
  return type(s) == "string" and #s > 0 and #s <= max and not s:find("[%c]")
end

local function remember(room, message)
  local list = history[room] or stelar.array()
  list[#list + 1] = message
  if #list > HISTORY_MAX then table.remove(list, 1) end
  history[room] = list
end

server:onConnection(function(ctx)
  local nick = "guest-" .. ctx.id:sub(1, 6)
  ctx:setMetadata("nick", nick)
  nicks[ctx.id] = nick
  ctx:emit("welcome", { id = ctx.id, nick = nick })
end)

server:on("nick", function(ctx)
  if not valid_name(ctx.data, 32) then
    return ctx:emit("problem", { message = "a nickname is 1 to 32 printable characters" })
  end
  local old = ctx:getMetadata("nick")
  ctx:setMetadata("nick", ctx.data)
  nicks[ctx.id] = ctx.data
  server:broadcast("nick-changed", { id = ctx.id, from = old, to = ctx.data })
end)

server:on("join", function(ctx)
  local room = ctx.data
  if not valid_name(room, 64) then
    return ctx:emit("problem", { message = "a room name is 1 to 64 printable characters" })
  end
  if not ctx:joinRoom(room) then
    return ctx:emit("problem", { message = "cannot join " .. room })
  end
  ctx:emit("history", { room = room, messages = history[room] or stelar.array() })
  ctx:to(room, "joined", { room = room, id = ctx.id, nick = ctx:getMetadata("nick") })
end)

server:on("leave", function(ctx)
  if type(ctx.data) ~= "string" then return end
  ctx:leaveRoom(ctx.data)
  server:to(ctx.data, "left", { room = ctx.data, id = ctx.id, nick = ctx:getMetadata("nick") })
end)

server:on("say", function(ctx)
  local d = ctx.data
  if type(d) ~= "table" or not valid_name(d.room, 64) or type(d.text) ~= "string" then
    return ctx:emit("problem", { message = "say needs {room, text}" })
  end
  local message = { room = d.room, id = ctx.id, nick = ctx:getMetadata("nick"),
                    text = d.text:sub(1, 2000), at = stelar.now() }
  remember(d.room, message)
  server:to(d.room, "message", message)
end)

server:onAck("members", function(ctx)
  local room = type(ctx.data) == "table" and ctx.data.room
  if not valid_name(room, 64) then error("members needs {room}") end
  -- Every node's members: this handler waits for Redis's answer (alone,
  -- the server answers at once; problem is "cluster unavailable" without Redis).
  local ids, problem = server:getRoomMembers(room, { cluster = true })
  local members = stelar.array()
  for _, id in ipairs(ids) do
    members[#members + 1] = { id = id, nick = nicks[id] }
  end
  return { room = room, members = members, problem = problem }
end)

server:onDisconnect(function(ctx)
  -- The client has left its rooms already; tell everyone.
  nicks[ctx.id] = nil
  ctx:broadcast("gone", { id = ctx.id, nick = ctx:getMetadata("nick") })
end)

server:start(function(port)
  stelar.log.info("chat example ready", { port = port })
end)
