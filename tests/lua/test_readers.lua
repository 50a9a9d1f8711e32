--- tests/lua/test_readers.lua -- the Lua face of the readers, masks and images
-- (lua/ldata.c): md.open_*, ds[i], ds:get/info/labels, mask ops, PNG I/O,
-- LabelMe, the cluttered compositor, and their errors.
local md = require "mdoctor"
local T = dofile("tests/lua/harness.lua")
local dir = T.tmpdir()

local function write(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
end
local function mkdir(p) assert(os.execute("mkdir -p '" .. p .. "'")) end

-- {=== IDX
local n, r, c = 4, 3, 2
local px = {}
for i = 0, n * r * c - 1 do px[#px + 1] = string.char((i * 13) % 256) end
write(dir .. "/small-images", string.pack(">I4I4I4I4", 0x803, n, r, c) .. table.concat(px))
write(dir .. "/small-labels", string.pack(">I4I4", 0x801, n) .. string.char(2, 0, 1, 2))
local ds = md.open_idx(dir .. "/small-images", dir .. "/small-labels")
T.check(#ds == 4, "#ds")
local it = ds[1]
T.check(md.is_tensor(it.image) and it[1] == it.image, "ds[1].image, ds[1][1]")
T.close(it.image:shape(), { 1, 3, 2 }, "image (c,h,w)")
T.check(it.label == 2 and it[2] == 2 and math.type(it.label) == "integer", "label 0-based integer")
T.check(it.mask == nil and it[3] == nil, "no mask -> nil")
local exp = {}
for i = 0, r * c - 1 do exp[#exp + 1] = ((i * 13) % 256) / 255 end
T.close(it.image:reshape(-1), exp, 1e-6, 1e-7, "pixels in [0,1]")
local x, y, m = ds:get(4)
T.check(y == 2 and m == nil, "ds:get(i) -> image, label, mask")
local e4 = {}
for i = 3 * r * c, 4 * r * c - 1 do e4[#e4 + 1] = ((i * 13) % 256) / 255 end
T.close(x:reshape(-1), e4, 1e-6, 1e-7, "ds:get(4) pixels (1-based)")
T.check(ds:label(2) == 0, "ds:label")
T.close(ds:labels(), { 2, 0, 1, 2 }, "ds:labels() tensor")
T.check(ds:labels():dtype() == "int64", "labels are int64")
local info = ds:info()
T.check(info.n == 4 and info.c == 1 and info.h == 3 and info.w == 2 and info.classes == 3, "info sizes")
T.check(info.has_masks == false and info.name == "small-images" and #info.mean == 1 and #info.std == 1, "info fields")
T.check(info.class_names == nil, "no class names for a plain IDX")
T.check(tostring(ds):find("md.Dataset(small-images: 4 items of 1x3x2, 3 classes)", 1, true) ~= nil, "tostring")
T.err(function() return ds[0] end, "out of range 1..4", "ds[0]: 1-based")
T.err(function() return ds[5] end, "index 5 out of range", "ds[#ds+1]")
T.err(function() return ds:get(1.5) end, "integer index expected", "fractional index")
T.check(ds.nosuch == nil, "unknown method -> nil")
ds:close()
T.err(function() return ds[1] end, "closed", "closed data set")
T.err(function() return #ds end, "closed", "#closed")
ds:close() -- twice is fine
T.err(function() md.open_idx(dir .. "/nope", dir .. "/small-labels") end, "nope: cannot open", "missing file")
T.err(function() md.open_idx(dir .. "/small-labels", dir .. "/small-labels") end, "bad magic", "bad magic")
write(dir .. "/cut-images", string.pack(">I4I4I4I4", 0x803, n, r, c) .. "abc")
T.err(function() md.open_idx(dir .. "/cut-images", dir .. "/small-labels") end, "cut-images: file is", "truncated")

local fm = "/usr/share/datasets/fashion-mnist/"
local fh = io.open(fm .. "t10k-images-idx3-ubyte.gz")
if fh then
  fh:close()
  local t = md.open_idx(fm .. "t10k-images-idx3-ubyte.gz", fm .. "t10k-labels-idx1-ubyte.gz")
  local inf = t:info()
  T.check(#t == 10000 and inf.classes == 10 and inf.class_names[10] == "Ankle boot" and inf.name == "Fashion-MNIST",
    "Fashion-MNIST test set")
  T.close(inf.mean[1], 0.2860, 1e-6, 1e-6, "Fashion-MNIST mean")
  T.check(t[1].label == 9, "first test label is 9")
  T.close(t[1].image:sum(), 33456 / 255, 1e-5, 1e-4, "first test image sum")
else
  print("note: Fashion-MNIST not installed, skipped")
end
-- }===

-- {=== CIFAR, STL-10
local rec = {}
for k = 0, 3071 do rec[#rec + 1] = string.char(k % 251) end
rec = table.concat(rec)
write(dir .. "/data_batch_1.bin", string.char(3) .. rec .. string.char(7) .. rec)
local cf = md.open_cifar(dir .. "/data_batch_1.bin")
T.check(#cf == 2 and cf[2].label == 7 and cf:info().class_names[4] == "cat", "open_cifar(file)")
T.close(cf[1].image:shape(), { 3, 32, 32 }, "cifar image shape")
T.close(cf[1].image[1][1][2], 1 / 255, 1e-6, 1e-7, "cifar pixel (R plane first)")
cf = md.open_cifar({ dir .. "/data_batch_1.bin", dir .. "/data_batch_1.bin" })
T.check(#cf == 4, "open_cifar({files})")
write(dir .. "/train.bin", string.char(5, 42) .. rec)
cf = md.open_cifar({ dir .. "/train.bin" }, { fine = false })
T.check(cf[1].label == 5 and cf:info().classes == 20, "cifar-100 coarse")
cf = md.open_cifar({ dir .. "/train.bin" })
T.check(cf[1].label == 42 and cf:info().classes == 100, "cifar-100 fine by default")
T.err(function() md.open_cifar({ dir .. "/train.bin" }, { fien = true }) end, "unknown option 'fien'", "cifar: unknown option")
T.err(function() md.open_cifar({ dir .. "/train.bin" }, { version = 11 }) end, "version must be 10 or 100", "cifar: bad version")
write(dir .. "/data_batch_2.bin", string.char(3) .. rec .. "x")
T.err(function() md.open_cifar({ dir .. "/data_batch_2.bin" }) end, "data_batch_2.bin: size 3074 is not a multiple", "cifar: bad size")
T.err(function() md.open_cifar({ 3 }) end, "not a string", "cifar: non-string file")

local sx = {}
for k = 0, 3 * 96 * 96 - 1 do sx[#sx + 1] = string.char(k % 96) end -- column-major: value = row
write(dir .. "/x.bin", table.concat(sx))
write(dir .. "/y.bin", string.char(10))
local st = md.open_stl10(dir .. "/x.bin", dir .. "/y.bin")
T.check(#st == 1 and st[1].label == 9, "stl10 label 10 -> 9")
T.close(st[1].image[1][5][1], 4 / 255, 1e-6, 1e-7, "stl10: row 5 of column 1 (column-major source)")
T.close(st[1].image[1][1][5], 0, 1e-6, 1e-7, "stl10: row 1 of column 5")
T.check(md.open_stl10(dir .. "/x.bin")[1].label == -1, "stl10 without labels -> -1")
T.err(function() md.open_stl10(dir .. "/y.bin") end, "y.bin: size 1 is not a multiple", "stl10: bad size")
-- }===

-- {=== image folders
mkdir(dir .. "/imgs/cat")
mkdir(dir .. "/imgs/dog")
mkdir(dir .. "/masks/cat")
mkdir(dir .. "/masks/dog")
md.manual_seed(3)
local pics = {}
for i, rel in ipairs { "cat/a.png", "cat/b.png", "dog/c.png" } do
  local p = md.rand(3, 6, 8)
  pics[i] = p
  md.png_write(dir .. "/imgs/" .. rel, p)
  local mk = md.zeros(1, 6, 8)
  mk:narrow(3, 1, i * 2):fill_(1) -- columns 1..2i object
  md.png_write(dir .. "/masks/" .. rel, mk)
end
local fd = md.open_folder(dir .. "/imgs", { masks = dir .. "/masks" })
local fi = fd:info()
T.check(#fd == 3 and fi.classes == 2 and fi.class_names[1] == "cat" and fi.class_names[2] == "dog", "folder classes")
T.check(fi.has_masks and fi.c == 3 and fi.h == 6 and fi.w == 8 and fi.name == "imgs" and fi.in_memory == false, "folder info")
local item = fd[3]
T.check(item.label == 1, "folder label")
T.close(item.image, pics[3], 0, 0.5 / 255 + 1e-6, "folder image = written PNG")
T.close(item.mask:sum(), 6 * 6, "folder mask (1,h,w) 0/1")
T.close(item.mask:shape(), { 1, 6, 8 }, "mask shape")
local g = md.open_folder(dir .. "/imgs", { masks = dir .. "/masks", size = { 3, 4 }, channels = 1, stats = 0 })
local gi = g:info()
T.check(gi.c == 1 and gi.h == 3 and gi.w == 4, "size and channels options")
T.close(g[2].mask[1], { { 1, 1, 0, 0 }, { 1, 1, 0, 0 }, { 1, 1, 0, 0 } }, "mask resized by area")
T.close(md.open_folder(dir .. "/imgs", { size = 5 }):info().h, 5, "size = n")
write(dir .. "/split.csv", "filename,label\ndog/c.png,cat\ncat/a.png,1\n")
local cs = md.open_folder(dir .. "/imgs", { csv = dir .. "/split.csv" })
T.check(#cs == 2 and cs[1].label == 0 and cs[2].label == 1, "csv split")
T.err(function() md.open_folder(dir .. "/imgs", { mask = "x" }) end, "unknown option 'mask'", "folder: unknown option")
T.err(function() md.open_folder(dir .. "/imgs", { channels = 2 }) end, "channels must be 1 or 3", "folder: channels")
T.err(function() md.open_folder(dir .. "/imgs", { size = { 0, 3 } }) end, "size must be positive", "folder: size")
T.err(function() md.open_folder(dir .. "/imgs", { fill = "odd" }) end, "fill must be", "folder: fill")
T.err(function() md.open_folder(dir .. "/imgs", { labelme = 1 }) end, "must be a boolean", "folder: labelme type")
write(dir .. "/imgs/dog/bad.png", "not a png at all")
T.err(function() md.open_folder(dir .. "/imgs") end, "imgs/dog/bad.png", "folder: unreadable image at open")
os.remove(dir .. "/imgs/dog/bad.png")
md.png_write(dir .. "/imgs/dog/d.png", md.rand(3, 6, 8))
T.err(function() md.open_folder(dir .. "/imgs", { masks = dir .. "/masks" }) end, "no mask for image", "folder: missing mask")
md.png_write(dir .. "/masks/dog/d.png", md.zeros(1, 5, 8))
T.err(function() md.open_folder(dir .. "/imgs", { masks = dir .. "/masks" }) end, "masks/dog/d.png is 8x5 but its image",
  "folder: mask of another size")
-- }===

-- {=== LabelMe
mkdir(dir .. "/lm/obj")
md.png_write(dir .. "/lm/obj/p.png", md.rand(3, 8, 8))
write(dir .. "/lm/obj/p.json", [==[{"shapes": [{"label": "x", "shape_type": "rectangle",
  "points": [[1.5, 2.5], [5.5, 4.5]]}], "imageHeight": 8, "imageWidth": 8}]==])
local lm = md.open_folder(dir .. "/lm", { labelme = true })
T.check(lm:info().has_masks, "labelme folder has masks")
local want = {}
for i = 0, 7 do
  want[i + 1] = {}
  for j = 0, 7 do want[i + 1][j + 1] = (i >= 3 and i <= 4 and j >= 2 and j <= 5) and 1 or 0 end
end
T.close(lm[1].mask[1], want, "labelme rectangle mask")
T.close(md.labelme_mask(dir .. "/lm/obj/p.json", 8, 8), md.tensor({ want }), "md.labelme_mask")
T.close(md.labelme_mask(dir .. "/lm/obj/p.json", 4, 4, { fill = "nonzero" }):sum(), 2, "labelme at 4x4")
write(dir .. "/lm/obj/p.json", [==[{"shapes": [}]==])
T.err(function() md.open_folder(dir .. "/lm", { labelme = true }) end, "p.json: bad JSON", "labelme: bad JSON")
-- }===

-- {=== mask ops
local m44 = md.tensor { { 1, 1, 1, 0 }, { 1, 0, 0, 1 }, { 0, 0, 1, 1 }, { 1, 0, 1, 0 } }
T.close(md.mask_resize(m44, 2, 2), { { { { 1, 1 }, { 0, 1 } } } }, "mask_resize (H,W) -> (1,1,h,w)")
T.close(md.mask_resize(m44, { 2, 2 }), md.mask_resize(m44, 2, 2), "mask_resize {h,w}")
T.close(md.mask_resize(m44, md.zeros(7, 5, 2, 2)), md.mask_resize(m44, 2, 2), "mask_resize to a feature map's size")
local function onehot(h, w, i, j) -- an h x w mask with pixel (i, j) set, 1-based
  local t = {}
  for a = 1, h do
    t[a] = {}
    for b = 1, w do t[a][b] = (a == i and b == j) and 1 or 0 end
  end
  return md.tensor(t)
end
local one = onehot(5, 5, 3, 3)
local d1 = md.mask_dilate(one, 1)
T.close(d1:sum(), 9, "mask_dilate 3x3 square")
T.close(d1[2][2], 1, "mask_dilate includes the diagonal (Chebyshev)")
T.close(md.mask_erode(d1, 1), one, "mask_erode undoes it")
T.close(md.mask_expand(one, 2):sum(), 25, "mask_expand +2")
T.close(md.mask_expand(d1, -1), one, "mask_expand -1")
local p8 = onehot(8, 8, 4, 4):reshape(1, 1, 8, 8)
T.close(md.mask_for_layer(p8, 1, 4, 4)[1][1], { { 0, 0, 0, 0 }, { 0, 1, 1, 0 }, { 0, 1, 0, 0 }, { 0, 0, 0, 0 } },
  "mask_for_layer: expand 1 px, then area >= 0.5")
T.close(md.mask_for_layer(p8, 30, { 2, 2 }), { { { { 1, 1 }, { 1, 1 } } } }, "mask_for_layer 30 px")
T.err(function() md.mask_dilate(one, 1.5) end, "number has no integer representation", "mask_dilate: integer radius")
T.err(function() md.mask_dilate(one, -1) end, "radius must be >= 0", "mask_dilate: negative")
T.err(function() md.mask_resize(md.zeros(4), 2, 2) end, "mask must be (H,W), (N,H,W) or (N,C,H,W)", "mask_resize: 1-d")
T.err(function() md.mask_resize(m44, 0, 2) end, "target size", "mask_resize: empty target")
T.err(function() md.mask_resize("x", 2, 2) end, "tensor expected", "mask_resize: not a tensor")
-- }===

-- {=== PNG I/O
local img = md.rand(3, 5, 7)
md.png_write(dir .. "/rt.png", img)
local back = md.png_read(dir .. "/rt.png")
T.close(back, img, 0, 0.5 / 255 + 1e-6, "png round trip")
T.close(md.png_read(dir .. "/rt.png", 1):shape(), { 1, 5, 7 }, "png_read to gray")
md.png_write(dir .. "/g.png", md.rand(4, 4))
T.close(md.png_read(dir .. "/g.png"):shape(), { 1, 4, 4 }, "png (H,W) -> 1 channel")
T.err(function() md.png_write(dir .. "/five.png", md.zeros(5, 2, 2)) end, "five.png", "png_write: 5 channels")
T.err(function() md.png_read(dir .. "/none.png") end, "none.png: cannot open", "png_read: missing")
T.err(function() md.png_read(dir .. "/rt.png", 2) end, "channels must be", "png_read: 2 channels")
-- }===

-- {=== the compositor
local fam = md.clutter_families()
T.check(#fam == 10 and fam[1] == "hstripes", "clutter_families")
local item28 = md.zeros(1, 28, 28)
item28:narrow(2, 5, 10):narrow(3, 8, 6):fill_(0.8)
local ci, cm = md.clutter_compose(item28, { size = 64, item_size = 28, x = 3, y = 7, texture = 5, seed = 9 })
T.close(ci:shape(), { 3, 64, 64 }, "compose image shape")
T.close(cm:sum(), 60, "compose mask = item pixels")
T.close(cm[1]:narrow(1, 7 + 5, 10):narrow(2, 3 + 8, 6):sum(), 60, "compose mask placed at x, y")
local ci2 = md.clutter_compose(item28, { size = 64, item_size = 28, x = 3, y = 7, texture = 5, seed = 9 })
T.close(ci2, ci, "compose deterministic")
T.check(ci:lt(0):sum():item() == 0 and ci:gt(1):sum():item() == 0, "compose in [0,1]")
T.err(function() md.clutter_compose(item28, { size = 64, item_size = 40, x = 30, y = 0 }) end, "bad parameters", "compose: outside")
T.err(function() md.clutter_compose(item28, { sise = 64 }) end, "unknown option 'sise'", "compose: unknown option")
-- }===

T.cleanup()
T.summary()
