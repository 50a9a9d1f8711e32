--- test_miniimagenet.lua -- md.data.miniimagenet on a tiny tree in the usual
-- layout (root/images/ with train.csv, val.csv, test.csv of "filename,label"
-- rows with WordNet ids): stable class ids across splits, "all", the 80/20
-- per-class split, open_folder's list options, errors.
-- (tests/c/test_datasets.c covers the same layout with JPEG files in C.)
local T = dofile("tests/lua/harness.lua")
local md = require "mdoctor"

local root = T.tmpdir() .. "/mini"
os.execute("mkdir -p '" .. root .. "/images'")
local wn = { "n01532829", "n01558993", "n01704323", "n01749939", "n01770081" } -- sorted: ids 0..4
-- five images per class; train holds classes 2 then 1 (file order differs from sorted), val 3, test 5 and 4
local split_classes = { train = { 2, 1 }, val = { 3 }, test = { 5, 4 } }
local value = {} -- file name -> the gray level its pixels have
local level = 0
for _, s in ipairs { "train", "val", "test" } do
  local rows = { "filename,label" }
  for _, c in ipairs(split_classes[s]) do
    for k = 1, 5 do
      local name = string.format("%s%08d.png", wn[c], k)
      level = level + 1
      value[name] = level
      md.png_write(root .. "/images/" .. name, md.full({ 3, 6, 8 }, level / 255))
      rows[#rows + 1] = name .. "," .. wn[c]
    end
  end
  local f = assert(io.open(root .. "/" .. s .. ".csv", "w"))
  f:write(table.concat(rows, "\n"), "\n")
  f:close()
end

local function labels(ds)
  local t = {}
  for i = 1, #ds do t[i] = ds:label(i) end
  return table.concat(t, ",")
end

local tr = md.data.miniimagenet { root = root, split = "train" }
local info = tr:info()
T.check(#tr == 10 and info.classes == 5 and info.class_names[1] == wn[1] and info.class_names[5] == wn[5],
  "miniimagenet train: 10 images, the 5 wnids of all three files as classes")
T.check(labels(tr) == "1,1,1,1,1,0,0,0,0,0", "miniimagenet train: wnid ids in sorted order, rows in file order")
local img = tr:get(1)
T.check(img:shape()[1] == 3 and img:shape()[2] == 84 and img:shape()[3] == 84, "miniimagenet: images resized to 84x84")
T.close(img:mean():item(), 1 / 255, 0, 1e-3, "miniimagenet: item 1 is the first row's file")
local va = md.data.miniimagenet { root = root, split = "val" }
T.check(#va == 5 and labels(va) == "2,2,2,2,2" and va:info().classes == 5, "miniimagenet val: class id 2")
local te = md.data.miniimagenet { root = root, split = "test", size = { 6, 8 } }
T.check(labels(te) == "4,4,4,4,4,3,3,3,3,3" and te:get(1):shape()[3] == 8, "miniimagenet test: ids 4 and 3, size option")
local all = md.data.miniimagenet { root = root, split = "all" }
T.check(#all == 25 and labels(all) == labels(tr) .. "," .. labels(va) .. "," .. labels(te), "miniimagenet all: 25 rows in order")
local ctr = md.data.miniimagenet { root = root, split = "class_train" }
local cte = md.data.miniimagenet { root = root, split = "class_test" }
local counts = {}
for i = 1, #cte do counts[cte:label(i)] = (counts[cte:label(i)] or 0) + 1 end
T.check(#ctr == 20 and #cte == 5 and counts[0] == 1 and counts[4] == 1, "miniimagenet class_train/class_test: 4 + 1 of each class")
local used = {}
for _, s in ipairs { ctr, cte } do for _, j in ipairs(s.indices) do used[j] = (used[j] or 0) + 1 end end
local part = true
for j = 1, 25 do part = part and used[j] == 1 end
T.check(part, "miniimagenet class_train/class_test: a partition of all")
T.check(cte.indices[1] == 5, "miniimagenet class_test: the 5th image of a class goes to test")

-- the same through image_folder / open_folder with list options
local f = md.data.image_folder { root = root .. "/images", csv = { root .. "/test.csv" },
  classes_from = { root .. "/train.csv", root .. "/val.csv", root .. "/test.csv" }, stats = 0 }
T.check(labels(f) == labels(te), "image_folder: csv as a list, classes_from")
T.err(function() md.open_folder(root .. "/images", { csv = root .. "/test.csv", classes_from = root .. "/train.csv" }) end,
  "option 'classes_from' must be a list of file names", "open_folder: classes_from not a list")
T.err(function() md.open_folder(root .. "/images", { csv = { root .. "/test.csv", 3 } }) end, "csv[2] is number",
  "open_folder: a csv list with a number")
T.err(function() md.open_folder(root .. "/images", { csv = root .. "/test.csv", classes_from = { root .. "/train.csv" } }) end,
  "not a label of the class CSV files", "open_folder: a label outside classes_from")

-- errors by name
T.err(function() md.data.miniimagenet { root = root .. "/none" } end, root .. "/none/train.csv not found",
  "miniimagenet: a missing root names the file")
T.err(function() md.data.miniimagenet { root = root .. "/none" } end, "images/ folder and train.csv",
  "miniimagenet: a missing root says what is needed")
T.err(function() md.data.miniimagenet { split = "everything" } end, "split must be one of train, val, test, all",
  "miniimagenet: bad split")
T.err(function() md.data.miniimagenet { roots = root } end, "unknown option 'roots'", "miniimagenet: unknown option")

T.cleanup()
T.summary()
