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

-- Modules loaded from the script's folder tree: name -> file. Hot reload
-- watches these files and refreshes their package.loaded entries.
prelude.modules = {}

function prelude.install_searcher(dir)
  local patterns = dir .. "/?.lua;" .. dir .. "/?/init.lua"
  table.insert(package.loaders, 2, function(name)
    local path = package.searchpath(name, patterns)
    if not path then return "\n\tno file '" .. name .. "' in " .. dir end
    local chunk, err = loadfile(path)
    if not chunk then error(err, 0) end
    prelude.modules[name] = path
    return chunk
  end)
end

-- Takes the script's modules out of package.loaded; returns what to put
-- back if the reload fails.
function prelude.unload_modules()
  local saved = {}
  for name in pairs(prelude.modules) do
    saved[name] = package.loaded[name]
    package.loaded[name] = nil
  end
  return saved
end

function prelude.restore_modules(saved)
  for name, value in pairs(saved) do package.loaded[name] = value end
end

return prelude
