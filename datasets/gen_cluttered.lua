--- datasets/gen_cluttered.lua -- the generated masked data set ("cluttered
-- Fashion-MNIST"): Fashion-MNIST items scaled and placed on cluttered,
-- textured backgrounds, with exact object masks.  In the TRAIN split the
-- background texture family is correlated with the class (class k gets
-- family k with probability p, else one of the other families); in the TEST
-- split it is uniform -- so a model can learn the background shortcut, and
-- Model Doctor's space-wise constraint has something to fix.
--
-- Run from the repository root:
--   build/mdoctor datasets/gen_cluttered.lua [--out build/cluttered] [--train 300]
--       [--test 100] [--seed 1] [--p 0.8] [--size 64] [--item 48]
--       [--fmnist /usr/share/datasets/fashion-mnist]
--       [--samples docs/cluttered_samples.png | --samples none]
-- Writes (see datasets/README.md):
--   OUT/train/<k-Name>/<nnnnn>.png        RGB size x size
--   OUT/masks/train/<k-Name>/<nnnnn>.png  gray 0/255, 255 = object
--   OUT/test/..., OUT/masks/test/...
--   OUT/train.csv, OUT/test.csv           filename,label,texture,item_size,x,y
--                                         (filename relative to OUT/<split>)
-- Open it with md.open_folder("OUT/train", {masks = "OUT/masks/train"}).
local md = require "mdoctor"

local opt = {
  out = "build/cluttered", train = 300, test = 100, seed = 1, p = 0.8, size = 64, item = 48,
  fmnist = "/usr/share/datasets/fashion-mnist", samples = "docs/cluttered_samples.png",
}
local numeric = { train = true, test = true, seed = true, p = true, size = true, item = true }
local args = arg or {}
local i = 1
while i <= #args do
  local k = args[i]:match("^%-%-(%w+)$")
  if not k or opt[k] == nil or args[i + 1] == nil then
    io.stderr:write("gen_cluttered: bad argument '" .. tostring(args[i]) .. "'\n" ..
      "usage: build/mdoctor datasets/gen_cluttered.lua [--out DIR] [--train N] [--test N] [--seed S]\n" ..
      "       [--p P] [--size S] [--item PX] [--fmnist DIR] [--samples PNG|none]\n")
    os.exit(false)
  end
  local v = args[i + 1]
  if numeric[k] then
    v = tonumber(v)
    if not v then error("gen_cluttered: --" .. k .. " needs a number") end
  end
  opt[k] = v
  i = i + 2
end
assert(opt.train >= 1 and opt.test >= 0, "gen_cluttered: --train must be >= 1, --test >= 0")
assert(opt.p >= 0 and opt.p <= 1, "gen_cluttered: --p must be in [0, 1]")
assert(opt.item <= opt.size, "gen_cluttered: --item must be <= --size")

local NF = #md.clutter_families()
local function shq(s) return "'" .. s:gsub("'", "'\\''") .. "'" end
local function mkdir_all(quoted) assert(os.execute("mkdir -p " .. quoted), "gen_cluttered: cannot create " .. quoted) end

local src = {
  train = md.open_idx(opt.fmnist .. "/train-images-idx3-ubyte.gz", opt.fmnist .. "/train-labels-idx1-ubyte.gz"),
  test = md.open_idx(opt.fmnist .. "/t10k-images-idx3-ubyte.gz", opt.fmnist .. "/t10k-labels-idx1-ubyte.gz"),
}
local names = src.train:info().class_names
local dirs = {}
for k = 0, 9 do dirs[k] = string.format("%d-%s", k, (names[k + 1]:gsub("[^%w%-]", "_"))) end

math.randomseed(opt.seed)
local t0 = md.now()
local stats = { train = { n = 0, agree = 0 }, test = { n = 0, agree = 0 } }

local function gen_split(split, per_class)
  if per_class == 0 then return end
  local ds = src[split]
  -- the items of each class, shuffled; a class's first per_class are used
  local by = {}
  for k = 0, 9 do by[k] = {} end
  local labels = ds:labels()
  local lt = labels:totable()
  for j = 1, #lt do local l = lt[j] by[l][#by[l] + 1] = j end
  local all = {} -- one mkdir for the split: a shell per directory is slow
  for k = 0, 9 do
    all[#all + 1] = shq(opt.out .. "/" .. split .. "/" .. dirs[k])
    all[#all + 1] = shq(opt.out .. "/masks/" .. split .. "/" .. dirs[k])
  end
  mkdir_all(table.concat(all, " "))
  local csv = assert(io.open(opt.out .. "/" .. split .. ".csv", "w"))
  csv:write("filename,label,texture,item_size,x,y\n")
  for k = 0, 9 do
    local pool = by[k]
    if per_class > #pool then
      error(string.format("gen_cluttered: %s has %d items of class %d, asked for %d", split, #pool, k, per_class))
    end
    for j = 1, per_class do -- partial Fisher-Yates
      local r = math.random(j, #pool)
      pool[j], pool[r] = pool[r], pool[j]
    end
    for j = 1, per_class do
      local tex
      if split == "train" then
        if math.random() < opt.p then tex = k else tex = (k + math.random(1, NF - 1)) % NF end
      else
        tex = math.random(0, NF - 1)
      end
      local s = math.floor(opt.item * (0.6 + 0.4 * math.random()) + 0.5)
      local x, y = math.random(0, opt.size - s), math.random(0, opt.size - s)
      local item = ds:get(pool[j])
      local img, mask = md.clutter_compose(item, {
        size = opt.size, item_size = s, x = x, y = y, texture = tex, seed = math.random(0, 1 << 62),
      })
      local rel = string.format("%s/%05d.png", dirs[k], j - 1)
      md.png_write(opt.out .. "/" .. split .. "/" .. rel, img)
      md.png_write(opt.out .. "/masks/" .. split .. "/" .. rel, mask)
      csv:write(string.format("%s,%d,%d,%d,%d,%d\n", rel, k, tex, s, x, y))
      stats[split].n = stats[split].n + 1
      if tex == k then stats[split].agree = stats[split].agree + 1 end
    end
  end
  csv:close()
end

mkdir_all(shq(opt.out))
gen_split("train", opt.train)
gen_split("test", opt.test)
local dt = md.now() - t0
for _, sp in ipairs { "train", "test" } do
  local st = stats[sp]
  if st.n > 0 then
    print(string.format("%-5s %5d images, texture == class for %.1f%%", sp, st.n, 100 * st.agree / st.n))
  end
end
print(string.format("written to %s in %.2f s", opt.out, dt))

-- the picture: samples with their masks side by side, 2 rows from each split
if opt.samples ~= "none" and opt.samples ~= "" then
  local rows = {}
  for _, sp in ipairs { "train", "test" } do
    if stats[sp].n > 0 then
      local ds = md.open_folder(opt.out .. "/" .. sp, { masks = opt.out .. "/masks/" .. sp, stats = 0 })
      local per = stats[sp].n // 10
      for r = 0, 1 do
        local cells = {}
        for c = 0, 4 do
          local k = r * 5 + c -- one per class
          local img, _, mask = ds:get(k * per + 1 + r)
          local m3 = mask:expand(3, opt.size, opt.size)
          cells[#cells + 1] = md.pad(md.cat({ img, md.pad(m3, { 2, 0, 0, 0 }, 1) }, 3), { 0, 6, 0, 0 }, 1)
        end
        rows[#rows + 1] = md.pad(md.cat(cells, 3), { 0, 0, 0, 6 }, 1)
      end
    end
  end
  local pic = md.cat(rows, 2)
  pic = md.interpolate(pic:reshape(1, 3, pic:shape()[2], pic:shape()[3]), { size = { 2 * pic:shape()[2], 2 * pic:shape()[3] } })
  md.png_write(opt.samples, pic:reshape(3, pic:shape()[3], pic:shape()[4]))
  print("samples: " .. opt.samples .. " (rows 1-2 train, 3-4 test; each image with its mask)")
end
