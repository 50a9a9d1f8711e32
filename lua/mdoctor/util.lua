--- small helpers: a progress line for long loops
local core = require "mdoctor.core"
local util = {}

util.now = core.now

local function hms(s)
  if s ~= s or s == math.huge then return "--:--" end
  s = math.floor(s + 0.5)
  if s >= 3600 then return string.format("%d:%02d:%02d", s // 3600, s % 3600 // 60, s % 60) end
  return string.format("%d:%02d", s // 60, s % 60)
end
util.hms = hms

--- util.progress{total=N, label="epoch 1/3", unit="img"} -> p
-- p:update(done, items, {loss=..., acc=...}) redraws one line on stderr (a
-- terminal) or prints a line every `every` seconds otherwise; p:done(stats).
function util.progress(o)
  local p = { total = o.total, label = o.label or "", unit = o.unit or "img", t0 = core.now(),
    items = 0, last = 0, every = o.every or (core.isatty(2) and 0.1 or 5), tty = core.isatty(2),
    quiet = o.quiet }
  local function line(self, done, stats, final)
    local el = core.now() - self.t0
    local rate = self.items / math.max(el, 1e-9)
    local eta = done > 0 and el / done * (self.total - done) or math.huge
    local parts = { string.format("%s [%*d/%d]", self.label, #tostring(self.total), done, self.total) }
    for _, k in ipairs { "loss", "acc" } do
      local v = stats and stats[k]
      if v then parts[#parts + 1] = k == "acc" and string.format("acc %.2f%%", 100 * v) or string.format("%s %.4f", k, v) end
    end
    for k, v in pairs(stats or {}) do
      if k ~= "loss" and k ~= "acc" then parts[#parts + 1] = string.format("%s %.4g", k, v) end
    end
    parts[#parts + 1] = string.format("%.0f %s/s", rate, self.unit)
    parts[#parts + 1] = final and ("in " .. hms(el)) or ("ETA " .. hms(eta))
    return table.concat(parts, "  ")
  end
  function p:update(done, items, stats)
    self.items = self.items + (items or 0)
    core.interrupt_check()
    if self.quiet then return end
    local now = core.now()
    if now - self.last < self.every and done < self.total then return end
    self.last = now
    local s = line(self, done, stats)
    if self.tty then io.stderr:write("\r\27[K", s) else io.stderr:write(s, "\n") end
    io.stderr:flush()
  end
  function p:done(stats)
    if self.quiet then return end
    local s = line(self, self.total, stats, true)
    if self.tty then io.stderr:write("\r\27[K", s, "\n") else io.stderr:write(s, "\n") end
  end
  return p
end

return util
