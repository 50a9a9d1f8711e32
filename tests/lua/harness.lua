--- tests/lua/harness.lua -- the Lua test harness.
--
--   local T = dofile("tests/lua/harness.lua")
--   T.check(cond, name)                   a plain condition
--   T.close(a, b, rtol, atol, name)       tensors, numbers or nested tables of
--                                         numbers; |a-b| <= atol + rtol*|b|
--                                         elementwise, shapes must agree
--   T.err(f, pattern, name)               f() must raise an error whose message
--                                         contains `pattern` (plain text)
--   T.summary()                           prints "N passed, N failed", exits
--
-- Every check prints "OK name ..." or "NOT OK name ..." with details (the
-- runner tests/run.sh shows only the NOT OK lines unless MD_VERBOSE is set).
-- Run a test from the repository root: build/mdoctor tests/lua/test_x.lua
local md = require "mdoctor"

local T = { passed = 0, failed = 0 }

local function report(ok, name, detail)
  name = name or "(unnamed)"
  if ok then
    T.passed = T.passed + 1
    print("OK " .. name .. (detail and detail ~= "" and (" " .. detail) or ""))
  else
    T.failed = T.failed + 1
    print("NOT OK " .. name .. (detail and detail ~= "" and (" " .. detail) or ""))
  end
  io.stdout:flush()
  return ok
end
T.report = report

--- where a check was called from (file:line), for failure messages
local function where(level)
  local info = debug.getinfo(level + 1, "Sl")
  if not info then return "?" end
  return (info.short_src or "?") .. ":" .. (info.currentline or 0)
end

function T.check(cond, name)
  local ok = cond and true or false
  return report(ok, name, ok and "" or ("(" .. where(2) .. ")"))
end

-- flatten a tensor, number or nested table into a list of numbers and a shape
local function flat(v)
  if type(v) == "number" then return { v }, {} end
  if md.is_tensor(v) then
    local vals = v:numel() == 0 and {} or v:float():reshape(-1):totable()
    local shape = {}
    for i, s in ipairs(v:shape()) do shape[i] = s end
    return vals, shape
  end
  if type(v) == "table" then
    local vals, shape = {}, {}
    local function rec(t, d)
      if type(t) == "number" then vals[#vals + 1] = t return end
      shape[d] = shape[d] or #t
      for _, x in ipairs(t) do rec(x, d + 1) end
    end
    rec(v, 1)
    return vals, shape
  end
  error("T.close: a tensor, number or table expected, got " .. type(v), 3)
end
T.flat = flat

local function shapestr(s)
  if #s == 0 then return "scalar" end
  return table.concat(s, "x")
end

--- T.close(a, b [, rtol=1e-5 [, atol=1e-6]], name); b is the reference
function T.close(a, b, rtol, atol, name)
  if type(rtol) == "string" then name, rtol, atol = rtol, nil, nil end
  if type(atol) == "string" then name, atol = atol, nil end
  rtol, atol = rtol or 1e-5, atol or 1e-6
  local ok, va, sa = pcall(flat, a)
  if not ok then return report(false, name, "(" .. where(2) .. ") " .. tostring(va)) end
  local vb, sb
  ok, vb, sb = pcall(flat, b)
  if not ok then return report(false, name, "(" .. where(2) .. ") " .. tostring(vb)) end
  -- a number compares with a one-element tensor of any shape
  local shapes_ok = #va == #vb and (#va == 1 or shapestr(sa) == shapestr(sb))
  if not shapes_ok then
    return report(false, name, string.format("(%s) shape %s vs expected %s", where(2), shapestr(sa), shapestr(sb)))
  end
  local maxdiff, worst, bad = 0, 0, nil
  for i = 1, #va do
    local x, y = va[i], vb[i]
    local d = math.abs(x - y)
    if x ~= x or y ~= y then d = (x ~= x and y ~= y) and 0 or math.huge end
    if d > maxdiff then maxdiff = d end
    local excess = d - (atol + rtol * math.abs(y))
    if excess > 0 and (not bad or excess > worst) then bad, worst = i, excess end
  end
  if bad then
    return report(false, name, string.format("(%s) maxdiff=%.3g; at flat index %d got %.9g expected %.9g (rtol %g atol %g, %d elements)",
      where(2), maxdiff, bad, va[bad], vb[bad], rtol, atol, #va))
  end
  return report(true, name, string.format("maxdiff=%.3g", maxdiff))
end

--- T.err(f, pattern, name): f must fail with a message containing pattern
function T.err(f, pattern, name)
  local ok, msg = pcall(f)
  if ok then return report(false, name, "(" .. where(2) .. ") no error raised (expected '" .. pattern .. "')") end
  msg = tostring(msg)
  if not msg:find(pattern, 1, true) then
    return report(false, name, string.format("(%s) message '%s' does not contain '%s'", where(2), msg, pattern))
  end
  return report(true, name, "[" .. msg:gsub("\n.*", "") .. "]")
end

--- T.run(name, f): a section; an unexpected error in f is one failure (with
-- a traceback) and the file goes on with the next section
function T.run(name, f)
  local ok, msg = xpcall(f, debug.traceback)
  if not ok then report(false, name .. ": unexpected error", "\n" .. tostring(msg)) end
  return ok
end

--- the message of f's error (or nil if it did not fail)
function T.errmsg(f)
  local ok, msg = pcall(f)
  if ok then return nil end
  return tostring(msg)
end

function T.summary()
  print(string.format("%d passed, %d failed", T.passed, T.failed))
  io.stdout:flush()
  os.exit(T.failed == 0)
end

--- a fixture file: tests/fixtures/<name>
function T.fixture(name)
  return "tests/fixtures/" .. name
end

--- the shell running this test (build/mdoctor, build-asan/mdoctor), else build/mdoctor
T.exe = arg and arg[-1]
if not T.exe or not T.exe:match("mdoctor$") then T.exe = "build/mdoctor" end

--- s quoted for sh
function T.shq(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

--- the contents of the file at path, or nil when it cannot be read
function T.slurp(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end
--- write text to the file at path (replacing it); returns path
function T.spit(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
  return path
end

--- whether path can be opened
function T.exists(path)
  local f = io.open(path, "rb")
  if f then f:close() return true end
  return false
end

--- whether s (may be nil) contains sub literally
function T.has(s, sub) return s ~= nil and s:find(sub, 1, true) ~= nil end

--- whether two lists hold equal elements in the same order
function T.same_list(a, b)
  if #a ~= #b then return false end
  for i = 1, #a do if a[i] ~= b[i] then return false end end
  return true
end

--- the entries of t whose names start with prefix, with the prefix removed
-- (a module's state dict out of a fixture file)
function T.under(t, prefix)
  local out = {}
  for k, v in pairs(t) do
    if k:sub(1, #prefix) == prefix then out[k:sub(#prefix + 1)] = v end
  end
  return out
end

--- a fresh path in a private temporary directory (removed by T.cleanup)
local tmpdir
function T.tmpdir()
  if not tmpdir then
    local p = io.popen("mktemp -d /tmp/mdoctor-test.XXXXXX")
    tmpdir = p:read("l")
    p:close()
    assert(tmpdir and tmpdir:match("^/tmp/mdoctor%-test%."), "T.tmpdir: mktemp failed")
  end
  return tmpdir
end
function T.cleanup()
  if tmpdir then os.execute("rm -rf '" .. tmpdir .. "'") tmpdir = nil end
end

--- the files in a directory (names), sorted
function T.ls(dir)
  local out = {}
  local p = io.popen("ls -A '" .. dir .. "' 2>/dev/null")
  for l in p:lines() do out[#out + 1] = l end
  p:close()
  table.sort(out)
  return out
end

--- resident set size of this process in bytes (/proc/self/statm field 2)
function T.rss()
  local f = io.open("/proc/self/statm")
  if not f then return nil end
  local s = f:read("l")
  f:close()
  local _, res = s:match("(%d+)%s+(%d+)")
  return tonumber(res) * 4096
end

--- a float tensor from a nested table (works with or without options)
function T.tensor(v, o)
  return md.tensor(v, o or {})
end

return T
