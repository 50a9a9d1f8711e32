--- small helpers: a progress line for long loops
local core = require "mdoctor.core"
local util = {}

util.now = core.now
--- util.quiet = true silences every progress line that does not ask otherwise
util.quiet = false

--- checkopts(name, o, known [, level=3]) -> o or {}: o must be nil or a table
-- whose keys are all in `known`; the error names the unknown key and lists
-- the known ones, reported `level` frames up (3: the caller of the function
-- that checks its options)
function util.checkopts(name, o, known, level)
  level = level or 3
  if o == nil then return {} end
  if type(o) ~= "table" then error(string.format("%s: options must be a table, got %s", name, type(o)), level) end
  for k in pairs(o) do
    local ok = false
    for _, x in ipairs(known) do if x == k then ok = true break end end
    if not ok then
      error(string.format("%s: unknown option '%s' (known: %s)", name, tostring(k), table.concat(known, ", ")), level)
    end
  end
  return o
end

local function hms(s)
  if s ~= s or s == math.huge then return "--:--" end
  s = math.floor(s + 0.5)
  if s >= 3600 then return string.format("%d:%02d:%02d", s // 3600, s % 3600 // 60, s % 60) end
  return string.format("%d:%02d", s // 60, s % 60)
end
util.hms = hms

--- util.progress{total=N, label="epoch 1/3", unit="img"} -> p
-- p:update(done, items, {loss=..., acc=...}) redraws one line on stderr (a
-- terminal) or prints a line every `every` seconds otherwise (a log file);
-- p:done(stats) ends it with the totals.  total may be nil (unknown length).
-- update() also raises "interrupted!" once Ctrl-C was pressed.
function util.progress(o)
  local p = { total = o.total, label = o.label or "", unit = o.unit or "img", t0 = core.now(),
    items = 0, last = -math.huge, every = o.every or (core.isatty(2) and 0.1 or 5), tty = core.isatty(2),
    quiet = o.quiet == nil and util.quiet or o.quiet }
  local function line(self, done, stats, final)
    local el = core.now() - self.t0
    local rate = self.items / math.max(el, 1e-9)
    local eta = (done > 0 and self.total) and el / done * (self.total - done) or math.huge
    local parts
    if self.total then -- Lua's string.format has no '*' width: build "%3d" by hand
      parts = { string.format("%s [%" .. #tostring(self.total) .. "d/%d]", self.label, done, self.total) }
    else
      parts = { string.format("%s [%d]", self.label, done) }
    end
    for _, k in ipairs { "loss", "acc" } do
      local v = stats and stats[k]
      if v then parts[#parts + 1] = k == "acc" and string.format("acc %.2f%%", 100 * v) or string.format("%s %.4f", k, v) end
    end
    local extra = {} -- other stats by name, in a stable order
    for k in pairs(stats or {}) do if k ~= "loss" and k ~= "acc" then extra[#extra + 1] = k end end
    table.sort(extra)
    for _, k in ipairs(extra) do parts[#parts + 1] = string.format("%s %.4g", k, stats[k]) end
    parts[#parts + 1] = string.format("%.0f %s/s", rate, self.unit)
    parts[#parts + 1] = final and ("in " .. hms(el)) or ("ETA " .. hms(eta))
    return table.concat(parts, "  ")
  end
  function p:update(done, items, stats)
    self.items = self.items + (items or 0)
    self.n = done
    core.interrupt_check()
    if self.quiet then return end
    local now = core.now()
    -- a terminal redraws the last step too; a log gets it from p:done()
    local last_step = self.tty and self.total and done >= self.total
    if now - self.last < self.every and not last_step then return end
    self.last = now
    local s = line(self, done, stats)
    if self.tty then io.stderr:write("\r\27[K", s) else io.stderr:write(s, "\n") end
    io.stderr:flush()
  end
  function p:done(stats)
    if self.quiet then return end
    local s = line(self, self.total or self.n or 0, stats, true)
    if self.tty then io.stderr:write("\r\27[K", s, "\n") else io.stderr:write(s, "\n") end
  end
  return p
end

return util
