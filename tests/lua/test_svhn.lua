--- test_svhn.lua -- md.open_svhn and md.data.svhn on MATLAB v5 files written
-- here, by a writer of our own that follows the MAT-file format (so the test
-- does not trust libmatio to check itself): items (3,32,32) in [0,1] in the
-- right pixel order, labels 10 -> 0, errors as Lua errors naming the file.
-- (tests/c/test_svhn.c covers compressed files and malformed ones in depth.)
local T = dofile("tests/lua/harness.lua")
local md = require "mdoctor"

local tmp = T.tmpdir()

-- {====================================================== a MAT v5 writer
local function pad8(s) return s .. string.rep("\0", (8 - #s % 8) % 8) end
local function element(mtype, data) return string.pack("<I4I4", mtype, #data) .. pad8(data) end
local mi = { INT8 = 1, UINT8 = 2, INT32 = 5, UINT32 = 6, DOUBLE = 9, MATRIX = 14 }
local mx = { DOUBLE = 6, UINT8 = 9 }

-- one variable: class mx.*, dims {d1, d2, ...}, data as a packed string of mi type
local function variable(name, class, dims, mtype, data)
  local d = {}
  for i, v in ipairs(dims) do d[i] = string.pack("<i4", v) end
  local body = element(mi.UINT32, string.pack("<I4I4", class, 0)) .. element(mi.INT32, table.concat(d))
    .. element(mi.INT8, name) .. element(mtype, data)
  return string.pack("<I4I4", mi.MATRIX, #body) .. body
end

local function write_mat(path, vars)
  local text = "MATLAB 5.0 MAT-file, written by mdoctor's tests"
  local header = text .. string.rep(" ", 116 - #text) .. string.rep("\0", 8) .. string.pack("<I2", 0x0100) .. "IM"
  local f = assert(io.open(path, "wb"))
  f:write(header, table.concat(vars))
  f:close()
end

-- pixel (row r, column c, channel ch) of image n, all 0-based; (1,2) and (2,1) differ
local function px(r, c, ch, n) return (r * 7 + c * 13 + ch * 71 + n * 29 + (r * c) % 5) % 256 end

-- X: 32x32x3xN uint8 in column-major order (row fastest, then column, channel, image)
local function x_data(n)
  local bytes = {}
  for i = 0, n - 1 do
    for ch = 0, 2 do
      for c = 0, 31 do
        for r = 0, 31 do bytes[#bytes + 1] = string.char(px(r, c, ch, i)) end
      end
    end
  end
  return table.concat(bytes)
end
local function y_data(labels)
  local t = {}
  for i, v in ipairs(labels) do t[i] = string.pack("<d", v) end
  return table.concat(t)
end
-- }======================================================

local labels = { 1, 10, 3, 10, 9, 5 }
local n = #labels
os.execute("mkdir -p '" .. tmp .. "/svhn'")
write_mat(tmp .. "/svhn/train_32x32.mat", {
  variable("X", mx.UINT8, { 32, 32, 3, n }, mi.UINT8, x_data(n)),
  variable("y", mx.DOUBLE, { n, 1 }, mi.DOUBLE, y_data(labels)),
})

-- {====================================================== reading
local ds = md.open_svhn(tmp .. "/svhn/train_32x32.mat")
T.check(#ds == n, "open_svhn: 6 items")
local info = ds:info()
T.check(info.c == 3 and info.h == 32 and info.w == 32 and info.classes == 10 and info.name == "SVHN"
  and info.class_names[1] == "0" and info.class_names[10] == "9", "open_svhn: info")
local want = { 1, 0, 3, 0, 9, 5 }
local lab_ok = true
for i = 1, n do lab_ok = lab_ok and ds:label(i) == want[i] end
T.check(lab_ok, "open_svhn: labels are the digits (10 -> 0)")
T.close(ds:labels(), md.tensor(want):long(), 0, 0, "open_svhn: labels() tensor")

local img, label = ds:get(3)
T.check(label == 3, "open_svhn: get(3) label")
local sh = img:shape()
T.check(sh[1] == 3 and sh[2] == 32 and sh[3] == 32, "open_svhn: image (3,32,32)")
-- every pixel of item 3 against the formula, in [0,1]
local ref = {}
for ch = 0, 2 do
  ref[ch + 1] = {}
  for r = 0, 31 do
    ref[ch + 1][r + 1] = {}
    for c = 0, 31 do ref[ch + 1][r + 1][c + 1] = px(r, c, ch, 2) / 255 end
  end
end
T.close(img, ref, 0, 1e-6, "open_svhn: pixels of item 3 (row r, column c = X(r+1, c+1, ch, 3))")
-- the pixel that tells the orders apart: row 1, column 2 vs row 2, column 1
T.check(math.abs(img[2][2][3] - px(1, 2, 1, 2) / 255) < 1e-6 and px(1, 2, 1, 2) ~= px(2, 1, 1, 2),
  "open_svhn: (row 1, col 2) is not (row 2, col 1)")

-- md.data.svhn by name
local tr = md.data.svhn { root = tmp .. "/svhn" }
T.check(#tr == n and tr:label(2) == 0, "data.svhn{root=} opens train_32x32.mat")
T.err(function() md.data.svhn { root = tmp .. "/svhn", split = "test" } end, tmp .. "/svhn/test_32x32.mat not found",
  "data.svhn: a missing split names the file")
T.err(function() md.data.svhn { root = tmp .. "/svhn", split = "test" } end, "ufldl.stanford.edu/housenumbers",
  "data.svhn: a missing split says where to get it")
T.err(function() md.data.svhn { split = "validation" } end, "split must be one of train, test, extra", "data.svhn: bad split")
T.err(function() md.data.svhn { rot = 1 } end, "unknown option 'rot'", "data.svhn: unknown option")
-- a loader batch: the normalisation constants and the shapes go through
local loader = md.loader(tr, { batch_size = 4 })
local nb = 0
for images, lab in loader:iter() do
  nb = nb + 1
  if nb == 1 then T.check(images:shape()[2] == 3 and images:shape()[3] == 32 and lab[2] == 0, "data.svhn: a loader batch") end
end
T.check(nb == 2, "data.svhn: 6 items in batches of 4")
-- }======================================================

-- {====================================================== errors reach Lua
write_mat(tmp .. "/bad_y.mat", {
  variable("X", mx.UINT8, { 32, 32, 3, 2 }, mi.UINT8, x_data(2)),
  variable("y", mx.DOUBLE, { 2, 1 }, mi.DOUBLE, y_data({ 3, 0 })),
})
T.err(function() md.open_svhn(tmp .. "/bad_y.mat") end, "bad_y.mat: y(2) is 0; want 1..10", "open_svhn: label 0")
write_mat(tmp .. "/no_y.mat", { variable("X", mx.UINT8, { 32, 32, 3, 2 }, mi.UINT8, x_data(2)) })
T.err(function() md.open_svhn(tmp .. "/no_y.mat") end, "no variable 'y'", "open_svhn: no y")
write_mat(tmp .. "/gray.mat", {
  variable("X", mx.UINT8, { 32, 32, 1, 2 }, mi.UINT8, x_data(2):sub(1, 2048)),
  variable("y", mx.DOUBLE, { 2, 1 }, mi.DOUBLE, y_data({ 3, 4 })),
})
T.err(function() md.open_svhn(tmp .. "/gray.mat") end, "X is a uint8 array of 32x32x1x2", "open_svhn: X of one channel")
-- cut inside X
local f = assert(io.open(tmp .. "/svhn/train_32x32.mat", "rb"))
local whole = f:read("a")
f:close()
f = assert(io.open(tmp .. "/cut.mat", "wb"))
f:write(whole:sub(1, 5000))
f:close()
T.err(function() md.open_svhn(tmp .. "/cut.mat") end, "cut.mat: truncated", "open_svhn: a truncated file")
T.err(function() md.open_svhn(tmp .. "/nothing.mat") end, "nothing.mat: cannot open", "open_svhn: a missing file")
T.err(function() md.open_svhn() end, "bad argument #1", "open_svhn: no path")
-- }======================================================

T.cleanup()
T.summary()
