-- The Lua half of the binding: what must run as Lua so that the handlers it
-- calls may wait (a yield cannot cross a C call). Embedded in the binary.
local prelude = {}

-- Runs the middleware chain; true when the last one called next().
-- Calling next() twice is a no-op the second time.
function prelude.run_middleware(list, ctx)
  local accepted = false
  local function step(n)
    local called = false
    return function()
      if called then return end
      called = true
      local mw = list[n]
      if mw then mw(ctx, step(n + 1)) else accepted = true end
    end
  end
  step(1)()
  return accepted
end

return prelude
