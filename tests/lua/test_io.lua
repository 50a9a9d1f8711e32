-- tests/lua/test_io.lua -- md.save / md.load: round trips, rejection of
-- broken files (a Lua error naming the file and the problem, never a crash),
-- and atomic saving (no temporary files left, an existing file replaced only
-- by a complete one).
local T = dofile("tests/lua/harness.lua")
local md = require "mdoctor"
local tensor = T.tensor

local dir = T.tmpdir()

local function shape_is(t, s) return tostring(t:shape()) == "md.Size{" .. table.concat(s, ", ") .. "}" end
local function readfile(p)
  local f = assert(io.open(p, "rb"))
  local s = f:read("a")
  f:close()
  return s
end
local writefile = T.spit
-- a safetensors file from a header string and a data section
local function st(header, data)
  return string.pack("<I8", #header) .. header .. (data or "")
end
local function floats(...) return string.pack("<" .. string.rep("f", select("#", ...)), ...) end

-- {====================================================== round trips
T.run("round trips", function()
  md.manual_seed(2)
  local a = md.randn(3, 4)
  local i = md.tensor({ { 1, -2 }, { 1 << 40, -(1 << 50) } }, { dtype = "int64" })
  local s = tensor(-7.25)
  local big = md.randn(2, 3, 5, 7)
  local nc = md.arange(12):reshape(3, 4):transpose(1, 2) -- non-contiguous view
  local nar = md.arange(20):reshape(4, 5):narrow(2, 2, 3)  -- a strided slice
  local e = md.zeros(0, 3)
  local w = md.randn(4):requires_grad()
  local p = dir .. "/rt.safetensors"
  md.save(p, { a = a, ["int.tensor"] = i, scalar = s, big = big, nc = nc, nar = nar, empty = e, w = w,
    ['odd "name"\\ é/\t'] = tensor { 1 } })
  local l = md.load(p)
  local n = 0
  for _ in pairs(l) do n = n + 1 end
  T.check(n == 9, "nine tensors come back (" .. n .. ")")
  T.close(l.a, a, 0, 0, "float 3x4 exact")
  T.check(l["int.tensor"]:dtype() == "int64", "int64 stays int64")
  local it = l["int.tensor"]:totable()
  T.check(it[1][1] == 1 and it[1][2] == -2 and it[2][1] == 1 << 40 and it[2][2] == -(1 << 50), "int64 values exact (2^40, -2^50)")
  T.check(l.scalar:dim() == 0 and l.scalar:item() == -7.25, "0-d tensor")
  T.close(l.big, big, 0, 0, "4-d tensor exact")
  T.check(shape_is(l.nc, { 4, 3 }), "non-contiguous: shape")
  T.close(l.nc, nc, 0, 0, "non-contiguous: values in logical order")
  T.close(l.nc[1], { 0, 4, 8 }, 0, 0, "non-contiguous: first row is the first column")
  T.close(l.nar, nar, 0, 0, "strided narrow view")
  T.check(shape_is(l.empty, { 0, 3 }) and l.empty:numel() == 0, "empty tensor keeps its shape")
  T.close(l.w, w, 0, 0, "a tensor that requires grad saves its values")
  T.check(l.w:is_leaf() and (l.w * 1):grad_fn() == nil, "loaded tensors do not require grad")
  T.close(l['odd "name"\\ é/\t'], { 1 }, 0, 0, "a name with JSON escapes and UTF-8")
  -- the same tensors in tables filled in other orders: the same bytes
  local t1, t2 = {}, {}
  for k = 1, 40 do t1["t" .. k] = tensor { k } end
  for k = 40, 1, -1 do t2["t" .. k] = tensor { k } end
  md.save(dir .. "/o1.safetensors", t1)
  md.save(dir .. "/o2.safetensors", t2)
  local b1 = readfile(dir .. "/o1.safetensors")
  T.check(b1 == readfile(dir .. "/o2.safetensors"), "tensors saved in name order: same tables, same bytes")
  T.check(b1:find('"t1"', 1, true) < b1:find('"t10"', 1, true) and b1:find('"t10"', 1, true) < b1:find('"t2"', 1, true),
    "names in byte order in the header")
  -- an empty table saves an empty file that loads as an empty table
  md.save(dir .. "/none.safetensors", {})
  T.check(next(md.load(dir .. "/none.safetensors")) == nil, "save{} / load -> {}")
  -- overwrite with different content
  md.save(p, { only = tensor { 5, 6 } })
  local l2 = md.load(p)
  T.check(l2.a == nil and l2.only ~= nil, "saving again replaces the whole file")
  T.close(l2.only, { 5, 6 }, 0, 0, "replaced content")
  -- the files written by python load too
  local py = md.load(T.fixture("python_small.safetensors"))
  T.close(py.f32, { { 0.5, -1.25, 3.0 }, { 1e-3, -7.5, 100.0 } }, 1e-7, 0, "python-written F32")
  T.check(py.i64:dtype() == "int64" and py.i64[3] == 1 << 40, "python-written I64")
  T.check(py.scalar:item() == 42, "python-written 0-d")
  -- save errors
  T.err(function() md.save(dir .. "/x.safetensors", { a = 3 }) end, "not a tensor", "save of a number")
  T.err(function() md.save(dir .. "/x.safetensors", { md.zeros(1) }) end, "keys must be strings", "save with an integer key")
  T.err(function() md.save(dir .. "/x.safetensors", md.zeros(1)) end, "table expected", "save of a bare tensor")
  T.check(io.open(dir .. "/x.safetensors") == nil, "failed saves leave no file")
end)
-- }======================================================

-- {====================================================== broken files
T.run("broken files", function()
  local good = readfile(T.fixture("lua_optim.safetensors"))
  local cases = {
    { "empty file", "", "truncated file" },
    { "4 bytes", "\1\0\0\0", "truncated file" },
    { "header length > file", string.pack("<I8", 1000) .. "{}", "header length 1000 is larger than the file" },
    { "huge header length", string.pack("<I8", 0x7fffffffffffffff) .. "{}", "header length" },
    { "header length 0", string.pack("<I8", 0), "empty header" },
    { "bad JSON: not closed", st('{"a":{"dtype":"F32","shape":[1],'), "bad JSON" },
    { "bad JSON: garbage", st("hello world!"), "bad JSON" },
    { "bad JSON: array", st("[1,2,3]"), "bad JSON" },
    { "bad JSON: trailing comma", st('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},}', floats(1)), "bad JSON" },
    { "wrong dtype", st('{"a":{"dtype":"Q4","shape":[1],"data_offsets":[0,4]}}', floats(1)), "dtype 'Q4'" },
    { "dtype not a string", st('{"a":{"dtype":7,"shape":[1],"data_offsets":[0,4]}}', floats(1)), "dtype" },
    { "offsets past the end", st('{"a":{"dtype":"F32","shape":[100],"data_offsets":[0,400]}}', floats(1, 2, 3, 4)),
      "run past the end" },
    { "offsets disagree with shape", st('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,12]}}', floats(1, 2, 3)),
      "needs 8 bytes" },
    { "offsets reversed", st('{"a":{"dtype":"F32","shape":[0],"data_offsets":[8,4]}}', floats(1, 2)), "end before they begin" },
    { "negative offset", st('{"a":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}}', floats(1)), "negative" },
    { "negative dim", st('{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}', floats(1)), "negative" },
    { "missing field", st('{"a":{"dtype":"F32","shape":[1]}}', floats(1)), "missing field 'data_offsets'" },
    { "overlapping tensors", st('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}',
      floats(1, 2, 3)), "overlap" },
    { "duplicate names", st('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}',
      floats(1, 2)), "duplicate tensor name 'a'" },
    { "too many dims", st('{"a":{"dtype":"F32","shape":[1,1,1,1,1,1,1,1,1],"data_offsets":[0,4]}}', floats(1)), "dimensions" },
    { "truncated data", good:sub(1, #good - 10), "truncated" },
    { "truncated in the header", good:sub(1, 40), "header length" },
  }
  for k, c in ipairs(cases) do
    local p = string.format("%s/broken%02d.safetensors", dir, k)
    writefile(p, c[2])
    local msg = T.errmsg(function() return md.load(p) end)
    T.check(msg ~= nil and msg:find(p, 1, true) ~= nil and msg:find(c[3], 1, true) ~= nil,
      "load rejects " .. c[1] .. ": " .. tostring(msg))
  end
  T.err(function() md.load(dir .. "/no such file.safetensors") end, "no such file.safetensors: cannot open", "a missing file")
  T.err(function() md.load(dir) end, "is a directory", "a directory")
  T.err(function() md.load() end, "string expected", "load without a path")

  -- every prefix of a valid file is rejected with a message naming it
  local small = st('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"I64","shape":[1],"data_offsets":[8,16]}}',
    floats(1.5, -2) .. string.pack("<i8", 7))
  local p = dir .. "/prefix.safetensors"
  writefile(p, small)
  local l = md.load(p)
  T.check(l.a[2] == -2 and l.b[1] == 7, "the hand-written file is valid")
  local bad = 0
  for n = 0, #small - 1 do
    writefile(p, small:sub(1, n))
    local msg = T.errmsg(function() return md.load(p) end)
    if not (msg and msg:find(p, 1, true)) then
      bad = bad + 1
      if bad < 4 then print("  prefix of " .. n .. " bytes: " .. tostring(msg)) end
    end
  end
  T.check(bad == 0, "all " .. #small .. " truncations of a valid file are errors naming the file")
  -- bytes flipped anywhere: loads or errors, never a crash
  math.randomseed(17)
  local survived = 0
  for _ = 1, 300 do
    local pos = math.random(1, #small)
    local s = small:sub(1, pos - 1) .. string.char(math.random(0, 255)) .. small:sub(pos + 1)
    writefile(p, s)
    local ok, r = pcall(md.load, p)
    if ok or (type(r) == "string" and r:find(p, 1, true)) then survived = survived + 1 end
  end
  T.check(survived == 300, "300 corrupted files: each loads or raises an error naming the file")
end)
-- }======================================================

-- {====================================================== atomic saving
T.run("atomic save", function()
  local sub = dir .. "/atomic"
  os.execute("mkdir -p '" .. sub .. "'")
  local p = sub .. "/ckpt.safetensors"
  md.save(p, { w = tensor { 1, 2, 3 } })
  T.check(table.concat(T.ls(sub), ",") == "ckpt.safetensors", "after a save only the file is there: " .. table.concat(T.ls(sub), ","))
  -- a reader holding the old file keeps the old bytes: the new file replaces it by rename
  local old = readfile(p)
  local fh = assert(io.open(p, "rb"))
  md.save(p, { w = tensor { 4, 5, 6, 7 }, extra = md.zeros(100) })
  local seen_by_reader = fh:read("a")
  fh:close()
  T.check(seen_by_reader == old, "an open reader still sees the complete old file (replaced by rename)")
  T.close(md.load(p).w, { 4, 5, 6, 7 }, 0, 0, "the new content is in place")
  T.check(table.concat(T.ls(sub), ",") == "ckpt.safetensors", "no temporary files left after overwriting")

  -- into a directory that does not exist: an error naming the path, nothing created
  local ghost = dir .. "/does/not/exist/ckpt.safetensors"
  local before = table.concat(T.ls(dir), ",")
  local msg = T.errmsg(function() md.save(ghost, { w = tensor { 1 } }) end)
  T.check(msg ~= nil and msg:find(ghost, 1, true) ~= nil, "save into a missing directory fails naming the path: " .. tostring(msg))
  T.check(table.concat(T.ls(dir), ",") == before and io.open(dir .. "/does") == nil, "and creates nothing")

  -- onto an existing directory: the rename fails, the directory and its
  -- neighbours are untouched, the temporary file is removed
  local d2 = sub .. "/adir"
  os.execute("mkdir -p '" .. d2 .. "'")
  msg = T.errmsg(function() md.save(d2, { w = tensor { 1 } }) end)
  T.check(msg ~= nil and msg:find(d2, 1, true) ~= nil, "save onto a directory fails naming it: " .. tostring(msg))
  T.check(table.concat(T.ls(sub), ",") == "adir,ckpt.safetensors", "no temporary file left: " .. table.concat(T.ls(sub), ","))

  -- a save that fails half-way (file size limit) leaves the old file whole
  local before_bytes = readfile(p)
  local script = dir .. "/bigsave.lua"
  writefile(script, string.format([[
local ok, err = pcall(md.save, %q, { big = md.zeros(200000) })
print(ok and "SAVED" or ("FAILED " .. tostring(err)))
]], p))
  local cmd = string.format("sh -c \"trap '' XFSZ; ulimit -f 16; exec build/mdoctor '%s'\" 2>&1", script)
  local ph = io.popen(cmd)
  local out = ph:read("a")
  ph:close()
  T.check(out:find("FAILED", 1, true) ~= nil and out:find(p, 1, true) ~= nil,
    "a save past the file size limit raises an error naming the file: " .. out:gsub("\n", " "))
  T.check(readfile(p) == before_bytes, "the old file is intact after the failed save")
  T.close(md.load(p).w, { 4, 5, 6, 7 }, 0, 0, "and still loads")
  T.check(table.concat(T.ls(sub), ",") == "adir,ckpt.safetensors", "no temporary file left after the failed save: " .. table.concat(T.ls(sub), ","))
end)
-- }======================================================

T.cleanup()
T.summary()
