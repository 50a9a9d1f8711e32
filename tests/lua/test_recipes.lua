-- tests/lua/test_recipes.lua -- the experiment recipes (recipes/ablate_depth,
-- ablate_annotated, ablate_expand, discovery1, discovery2, gradcam) and their
-- shared helpers (recipes/common.lua).
--
-- The helpers against hand-computed values: option parsing, lists, the mask
-- expansion scale, markdown tables, cosine / Jaccard statistics (and their
-- agreement with doctor.sparsity), FGSM on a linear model (the input gradient
-- of cross-entropy in closed form), layer selection and feature sizes, SVG
-- plots, the JSON reader.  Then every recipe runs with tiny settings (a LeNet
-- trained once on 2000 Fashion-MNIST items, then loaded by the others; a VGG
-- of width 0.125 on a tiny generated cluttered set) in a subprocess with
-- MD_NUM_THREADS=1; its outputs must exist and parse, and the numbers that
-- different recipes compute for the same model must agree.
local T = dofile("tests/lua/harness.lua")
local md = require "mdoctor"
local common = require "common"
local doctor = require "mdoctor.doctor"
local report = require "mdoctor.report"

local dir = T.tmpdir()

local exe, q, slurp, exists, has = T.exe, T.shq, T.slurp, T.exists, T.has

--- run a recipe: status, stdout, stderr
local nrun = 0
local function recipe(name, args)
  nrun = nrun + 1
  local parts = {}
  for _, a in ipairs(args) do parts[#parts + 1] = q(a) end
  local outf, errf = dir .. "/stdout" .. nrun, dir .. "/stderr" .. nrun
  local ok, how, code = os.execute(string.format("MD_NUM_THREADS=1 %s recipes/%s.lua %s > %s 2> %s", q(exe), name,
    table.concat(parts, " "), q(outf), q(errf)))
  local status = ok == true and 0 or (how == "exit" and code or 128 + (code or 0))
  return status, slurp(outf) or "", slurp(errf) or ""
end

-- silence io.stderr while f runs (the usage goes there)
local function quietly(f)
  local real = io.stderr
  io.stderr = { write = function(self) return self end, flush = function() end }
  local ok, e = pcall(f)
  io.stderr = real
  if not ok then error(e, 0) end
end

local function jsonl(path)
  local ok, rows = pcall(common.read_jsonl, path)
  if not ok then return nil, rows end
  return rows
end
local function of_kind(rows, kind)
  local out = {}
  for _, r in ipairs(rows or {}) do if r.kind == kind then out[#out + 1] = r end end
  return out
end
local function is_svg(path)
  local s = slurp(path)
  return s ~= nil and s:match("^<svg ") ~= nil and s:match("</svg>%s*$") ~= nil
end
local function in01(x) return type(x) == "number" and x >= 0 and x <= 1 end

-- {====================================================== options
T.run("common.parse", function()
  local D = common.options(common.BASE, { { "out", "out/x", "folder" }, { "epochs", 7, "changed default" }, { "name", "a", "s" } })
  local o = common.parse("x", D, {})
  T.check(o.arch == "vgg" and o.width == 0.25 and o.epochs == 7 and o.out == "out/x" and o.quiet == false, "defaults, an override in place")
  local n = 0
  for _, d in ipairs(D) do if d[1] == "epochs" then n = n + 1 end end
  T.check(n == 1, "an overridden option is listed once")
  o = common.parse("x", D, { "--arch", "lenet", "--width=0.5", "--epochs", "2", "--quiet", "--name", "b c" })
  T.check(o.arch == "lenet" and o.width == 0.5 and o.epochs == 2 and math.type(o.epochs) == "integer" and o.quiet == true
    and o.name == "b c", "--k v, --k=v, a flag, a string with a space")
  o = common.parse("x", D, { "--quiet", "false", "--seed", "3" })
  T.check(o.quiet == false and o.seed == 3, "a flag with an explicit false")
  quietly(function()
    T.err(function() common.parse("x", D, { "--bogus", "1" }) end, "x: unknown option '--bogus'", "unknown option")
    T.err(function() common.parse("x", D, { "stray" }) end, "unknown option 'stray'", "a stray word")
    T.err(function() common.parse("x", D, { "--epochs" }) end, "--epochs needs a value", "missing value")
    T.err(function() common.parse("x", D, { "--epochs", "two" }) end, "--epochs needs a number, got 'two'", "not a number")
    T.err(function() common.parse("x", D, { "--epochs", "1.5" }) end, "--epochs needs an integer", "an integer option")
    T.err(function() common.parse("x", D, { "--quiet=maybe" }) end, "--quiet needs true or false", "a bad boolean")
  end)
  T.close(common.numbers("0, 5,10,2.5"), { 0, 5, 10, 2.5 }, 0, 0, "numbers: a comma list")
  T.check(math.type(common.numbers("5")[1]) == "integer", "numbers: integers stay integers")
  T.err(function() common.numbers("1,x", "--counts") end, "--counts: 'x' is not a number", "numbers: a bad entry")
  T.err(function() common.numbers("", "--counts") end, "--counts: empty list", "numbers: empty")
end)
-- }======================================================

-- {====================================================== small helpers
T.run("helpers", function()
  -- the paper's 30 px at 224: 3.75 -> 4 at 28, 30 at 224, 4.29 -> 4 at 32; 50 px at 64: 14.29 -> 14
  T.check(common.expand_px(30, 28) == 4 and common.expand_px(30, 224) == 30 and common.expand_px(30, 32) == 4 and
    common.expand_px(50, 64) == 14 and common.expand_px(0, 28) == 0 and common.expand_px(10, 28) == 1, "expand_px")
  T.check(math.type(common.expand_px(30, 28)) == "integer", "expand_px is an integer")
  T.check(common.md_table({ "a", "b" }, { { 1, "x" }, { 2.5, "y" } }) == "| a | b |\n| --- | --- |\n| 1 | x |\n| 2.5 | y |\n", "md_table")
  T.check(common.pct(0.12345) == "12.35" and common.pct(nil) == "-" and common.pct(0 / 0) == "-", "pct")
  T.check(common.fmt("%.1f", 2) == "2.0" and common.fmt("%.1f", nil) == "-" and common.fmt("%.1f", 0 / 0) == "-", "fmt")
  T.close(common.cosine({ 1, 0 }, { 1, 1 }), 1 / math.sqrt(2), 1e-12, 0, "cosine")
  T.close(common.cosine({ 1, 2, 3 }, { -2, 0, 1 }), 1 / math.sqrt(14 * 5), 1e-12, 0, "cosine 3-d")
  T.check(common.cosine({ 0, 0 }, { 1, 1 }) == 0, "cosine with a zero vector is 0")
  -- rows (1,0), (1,1), (0,1): pairs 1/sqrt2, 0, 1/sqrt2
  local m, lo, hi = common.row_cosines({ { 1, 0 }, { 1, 1 }, { 0, 1 } })
  T.close({ m, lo, hi }, { math.sqrt(2) / 3, 0, 1 / math.sqrt(2) }, 1e-12, 0, "row_cosines mean/min/max")
  T.check(common.row_cosines({ { 1, 2 } }) ~= common.row_cosines({ { 1, 2 } }), "row_cosines of one row is nan")
  -- top_set: 0.5 of the total; {4,3,2,1}: total 10, 4 < 5, 4+3 >= 5 -> {1,2}
  T.close(common.top_set({ 4, 3, 2, 1 }), { 1, 2 }, 0, 0, "top_set")
  T.close(common.top_set({ 1, 1, 6 }), { 3 }, 0, 0, "top_set: one kernel holds half")
  T.close(common.jaccard({ 1, 2, 3 }, { 2, 3, 4, 5 }), 2 / 5, 1e-12, 0, "jaccard")
  T.check(common.jaccard({}, {}) == 0 and common.jaccard({ 1 }, { 1 }) == 1, "jaccard: empty and equal sets")
  local ov = common.row_overlaps({ { 4, 3, 2, 1 }, { 1, 2, 3, 4 }, { 5, 0, 0, 4 } }) -- sets {1,2}, {4,3}, {1}
  T.close(ov, (0 + 0.5 + 0) / 3, 1e-12, 0, "row_overlaps")
  -- the sets are the ones doctor.sparsity counts
  md.manual_seed(5)
  local map = md.rand(6, 11) * md.rand(6, 11)
  local sp, rows, ok = doctor.sparsity(map), map:totable(), true
  for c = 1, 6 do if #common.top_set(rows[c]) / 11 ~= sp[c] then ok = false end end
  T.check(ok, "top_set has the size doctor.sparsity counts")
  T.close(common.mean({ 1, 2, 6 }), 3, 0, 0, "mean")
end)

T.run("json", function()
  local v = { a = 1, b = { 1, 2.5, "x\"y" }, c = "tab\there", d = true, e = { f = -1.5e-05 } }
  local back = common.json_decode(report.json(v))
  T.check(back.a == 1 and back.b[2] == 2.5 and back.b[3] == "x\"y" and back.c == "tab\there" and back.d == true
    and math.abs(back.e.f + 1.5e-05) < 1e-12, "report.json round trip")
  local t = common.json_decode(' {"x": [1, null, {"y": false}], "z": null, "s": "\\u0041\\n"} ')
  T.check(t.x[1] == 1 and t.x[2] == common.null and t.x[3].y == false and t.z == nil and t.s == "A\n", "null, nesting, escapes")
  T.err(function() common.json_decode('{"a": 1') end, "json:", "truncated")
  T.err(function() common.json_decode('{"a": 1} x') end, "trailing characters", "trailing")
  T.err(function() common.json_decode("[1, @]") end, "unexpected '@'", "bad value")
end)

T.run("fgsm on a linear model", function()
  -- x (2,1,2,2) -> flatten -> Linear(4,3): d CE / d x = (softmax - onehot) W / (B std)
  local model = md.nn.Sequential(md.nn.Flatten(), md.nn.Linear(4, 3))
  local W = { { 0.5, -1.0, 0.25, 2.0 }, { -0.75, 0.3, 1.5, -0.2 }, { 0.1, 0.9, -1.2, 0.6 } }
  local b = { 0.1, -0.2, 0.05 }
  model:load_state_dict({ ["1.weight"] = md.tensor(W), ["1.bias"] = md.tensor(b) })
  local X = { { 0.2, 0.97, 0.5, 0.02 }, { 0.6, 0.3, 0.99, 0.01 } }
  local y = { 2, 0 }
  local mean, std = 0.3, 0.5
  local raw = md.tensor(X):reshape(2, 1, 2, 2)
  local labels = md.tensor(y, { dtype = "int64" })
  local eps = 0.05
  local adv = common.fgsm(model, raw, labels, eps, md.full({ 1, 1, 1, 1 }, mean), md.full({ 1, 1, 1, 1 }, std))
  local want = {}
  for i = 1, 2 do
    local z, logit, mx = {}, {}, -math.huge
    for k = 1, 4 do z[k] = (X[i][k] - mean) / std end
    for c = 1, 3 do
      logit[c] = b[c]
      for k = 1, 4 do logit[c] = logit[c] + W[c][k] * z[k] end
      mx = math.max(mx, logit[c])
    end
    local se = 0
    for c = 1, 3 do se = se + math.exp(logit[c] - mx) end
    want[i] = {}
    for k = 1, 4 do
      local g = 0
      for c = 1, 3 do g = g + (math.exp(logit[c] - mx) / se - (c - 1 == y[i] and 1 or 0)) * W[c][k] end
      local s = g > 0 and 1 or (g < 0 and -1 or 0)
      want[i][k] = math.max(0, math.min(1, X[i][k] + eps * s))
    end
  end
  T.close(adv:reshape(2, 4), want, 1e-6, 1e-7, "fgsm: clamp(x + eps sign(dCE/dx), 0, 1)")
  T.check(not adv:needs_grad(), "fgsm result is detached")
end)

T.run("layers and feature sizes", function()
  -- a hand-made net: 28 -> conv pad 1 (28) -> pool 14 -> conv 3x3 (12) -> pool 6 -> conv 1x1 (6)
  local nn = md.nn
  local net = nn.Sequential(nn.Conv2d(1, 4, 3, { padding = 1 }), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 6, 3), nn.ReLU(),
    nn.MaxPool2d(2), nn.Conv2d(6, 5, 1), nn.Flatten(), nn.Linear(180, 10))
  local d = { info = { c = 1, h = 28, w = 28 } }
  local all = common.layers(net, "all")
  T.close({ #all, tonumber(all[1]), tonumber(all[2]), tonumber(all[3]) }, { 3, 0, 3, 6 }, 0, 0, "all: the conv layers in order")
  T.close({ common.conv_index(net, all[1]), common.conv_index(net, all[3]) }, { 1, 3 }, 0, 0, "conv_index")
  local l = common.layers(net, "1,#3, last,3")
  T.check(#l == 4 and l[1] == all[1] and l[2] == all[3] and l[3] == all[3] and l[4] == all[3], "conv numbers and last")
  T.check(#common.layers(net, "none") == 0 and common.layers(net, "first")[1] == all[1], "none, first")
  T.err(function() common.layers(net, "#4") end, "layer #4: the model has 3 conv layers", "a conv number out of range")
  T.err(function() common.layers(net, "features.99") end, "no module 'features.99'", "an unknown path")
  local sz = common.feature_sizes(net, d)
  T.close({ sz[all[1]], sz[all[2]], sz[all[3]] }, { { 4, 28, 28 }, { 6, 12, 12 }, { 5, 6, 6 } }, 0, 0, "feature sizes")
  T.check(net.training == true, "feature_sizes leaves the training mode as it was")
  T.check(common.layers(net, "spatial", 1, d)[1] == all[2], "spatial: the deepest conv with a map >= 7x7")
  T.check(common.spatial_layer(net, d, 13) == all[1], "spatial with min 13: conv 1")
  local small = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Conv2d(2, 2, 3), nn.Flatten())
  local ds = { info = { c = 1, h = 8, w = 8 } } -- maps 6x6, 4x4: none is 7x7
  T.check(common.spatial_layer(small, ds) == common.layers(small, "first")[1], "spatial: the largest map when none is 7x7")
  -- every k-th on a 13-conv VGG
  local vgg = require("arch.vgg") { in_channels = 1, num_classes = 10, input_size = 28, width = 0.125 }
  local v = common.layers(vgg, "all")
  local every = common.layers(vgg, "all", 5)
  T.check(#v == 13 and #every == 4 and every[1] == v[1] and every[2] == v[6] and every[3] == v[11] and every[4] == v[13],
    "every 5 of 13: conv 1, 6, 11 and the last")
  T.check(#common.layers(vgg, "all", 6) == 3 and common.layers(vgg, "all", 6)[3] == v[13], "every 6 of 13: conv 1, 7, 13")
end)

T.run("plot_svg", function()
  local svg = common.plot_svg { title = "t <&>", xlabel = "x", ylabel = "y", percent = true, series = {
    { name = "a", points = { { 1, 0.5 }, { 2, 0 / 0 }, { 3, 0.7 } } },
    { name = "b", points = { { 1, 0.6 }, { 3, 0.6 } }, dash = true } } }
  T.check(svg:match("^<svg ") and svg:match("</svg>\n$"), "an svg document")
  local _, np = svg:gsub("<polyline", "")
  local _, nc = svg:gsub("<circle", "")
  T.check(np == 2 and nc == 2, "two lines; markers on the solid one, the nan point left out")
  T.check(has(svg, "t &lt;&amp;&gt;") and has(svg, "stroke-dasharray"), "escaped title, a dashed line")
  T.check(has(svg, ">60.0%<") and has(svg, ">71.0%<"), "percent axis labels (0.5..0.7 padded by 5%)")
  -- a legend too wide for one row wraps, and the picture grows to hold it
  local one = common.plot_svg { series = { { name = "a", points = { { 1, 1 } } } } }
  local many = {}
  for j = 1, 6 do many[j] = { name = string.rep("long series name ", 2) .. j, points = { { 1, j } } } end
  local wide = common.plot_svg { series = many }
  local h1, h6 = tonumber(one:match('height="(%d+)"')), tonumber(wide:match('height="(%d+)"'))
  local right = 0
  for x in wide:gmatch('<text x="([%d.]+)" y="%d+">long') do right = math.max(right, tonumber(x)) end
  T.check(h6 > h1 and right > 0 and right + 6.2 * 35 <= 640, "a wrapped legend stays inside the width")
  local empty = common.plot_svg { series = { { name = "none", points = {} } } }
  T.check(empty:match("^<svg "), "no points still makes a document")
end)
-- }======================================================

-- {====================================================== the recipes
local FM = "/usr/share/datasets/fashion-mnist"
local have_fm = exists(FM .. "/train-images-idx3-ubyte.gz")
if not have_fm then
  print("note: the recipe runs are skipped: no Fashion-MNIST at " .. FM .. " (apt-get install dataset-fashion-mnist)")
end

-- LeNet's conv layers and their maps, the expectations below
local LC = common.layers(require("arch.lenet") {}, "all")
local LS = common.feature_sizes(require("arch.lenet") {}, { info = { c = 1, h = 28, w = 28 } })
local function csz(p) return string.format("%dx%dx%d", LS[p][1], LS[p][2], LS[p][3]) end
T.check(#LC == 2, "LeNet has two conv layers")

local TINY = { "--arch", "lenet", "--width", "1", "--test_subset", "300", "--T", "10", "--J", "2", "--quiet" }
local function args(extra)
  local a = {}
  for _, v in ipairs(TINY) do a[#a + 1] = v end
  for _, v in ipairs(extra) do a[#a + 1] = v end
  return a
end

local base_top1, ckpt, control_top1
if have_fm then
  T.run("discovery1 (trains the base model)", function()
    local out = dir .. "/d1"
    local st, so, se = recipe("discovery1", args { "--train_subset", "2000", "--batch", "16", "--epochs", "1", "--out", out })
    T.check(st == 0, "discovery1 runs " .. (st ~= 0 and se:sub(-600) or ""))
    local rows, err = jsonl(out .. "/results.jsonl")
    T.check(rows ~= nil, "discovery1: results.jsonl parses " .. tostring(err or ""))
    local b = of_kind(rows, "base")[1]
    base_top1 = b and b.test_top1
    T.check(b and in01(b.test_top1) and b.test_top1 > 0.3 and b.n_test == 300, "discovery1: base accuracy well above chance on 300 items")
    local tr, un = of_kind(rows, "trained"), of_kind(rows, "untrained")
    T.check(#tr == 2 and #un == 2 and tr[1].layer == LC[1] and tr[2].layer == LC[2] and tr[2].kernels == LS[LC[2]][1]
      and tr[2].map_h == LS[LC[2]][2], "discovery1: one trained and one untrained line per conv layer of LeNet")
    local ok = true
    for _, r in ipairs { tr[1], tr[2], un[1], un[2] } do
      if not (r.sparsity > 0 and r.sparsity <= 1 and in01(r.cos) and in01(r.overlap)) then ok = false end
      local s, n = 0, 0
      for _, v in ipairs(r.sparsity_per_class) do if v ~= common.null then s, n = s + v, n + 1 end end
      if #r.sparsity_per_class ~= 10 or math.abs(s / n - r.sparsity) > 1e-5 then ok = false end
      local img = r.heatmap and md.png_read(out .. "/" .. r.heatmap)
      if not img or img:size(2) ~= 240 then ok = false end -- 10 classes x 24 px rows
    end
    T.check(ok, "discovery1: statistics in range, sparsity the mean over classes, heatmap PNGs 10 rows high")
    -- the discovery: after training a class needs fewer kernels, and classes share fewer
    T.check(tr[2].sparsity < un[2].sparsity and tr[2].overlap < un[2].overlap,
      string.format("discovery1: trained conv 2 is sparser (%.3f < %.3f) and less shared (%.3f < %.3f) than at init",
        tr[2].sparsity, un[2].sparsity, tr[2].overlap, un[2].overlap))
    T.check(is_svg(out .. "/sparsity.svg") and is_svg(out .. "/similarity.svg"), "discovery1: two SVG plots")
    local md_text = slurp(out .. "/results.md")
    T.check(has(md_text, "| depth | layer |") and has(md_text, "img/map_02.png"), "discovery1: results.md with the table and heatmaps")
    T.check(has(so, string.format("| 2 | %s | %d |", LC[2], LS[LC[2]][1])), "discovery1: the summary table on stdout")
    ckpt = out .. "/base.safetensors"
    T.check(exists(ckpt), "discovery1: base.safetensors")
  end)
end

if ckpt then
  T.run("ablate_depth", function()
    local out = dir .. "/depth"
    local st, so, se = recipe("ablate_depth", args { "--checkpoint", ckpt, "--train_subset", "500", "--annotated", "5", "--out", out })
    T.check(st == 0, "ablate_depth runs " .. (st ~= 0 and se:sub(-600) or ""))
    local rows = jsonl(out .. "/results.jsonl")
    local b, c, tr = of_kind(rows, "base")[1], of_kind(rows, "control")[1], of_kind(rows, "treated")
    T.check(b and b.test_top1 == base_top1, "ablate_depth: the loaded base model scores as in discovery1")
    T.check(c and in01(c.test_top1), "ablate_depth: a control line")
    control_top1 = c and c.test_top1
    T.check(#tr == 2 and tr[1].depth == 1 and tr[2].depth == 2 and tr[1].layer == LC[1] and tr[2].layer == LC[2],
      "ablate_depth: one treated line per conv layer, in depth order")
    local ok = true
    for _, r in ipairs(tr) do
      if not (in01(r.test_top1) and r.base_top1 == base_top1 and r.control_top1 == control_top1 and r.constraint == "both"
        and type(r.ch) == "number" and r.ch > 0 and type(r.sp) == "number" and in01(r.irrelevant_share)
        and math.abs(r.change - (r.test_top1 - r.base_top1)) < 1e-5) then ok = false end
    end
    T.check(ok, "ablate_depth: treated lines carry accuracy, both losses, base and control")
    T.check(is_svg(out .. "/depth.svg") and has(slurp(out .. "/depth.svg"), "2 " .. LC[2]), "ablate_depth: depth.svg with layer ticks")
    T.check(has(slurp(out .. "/results.md"), "| depth | layer | map CxHxW |"), "ablate_depth: results.md")
    T.check(has(so, string.format("| 1 | %s | %s |", LC[1], csz(LC[1]))) and has(so, string.format("| 2 | %s | %s |", LC[2], csz(LC[2]))),
      "ablate_depth: summary table on stdout")
    -- one layer, space only, learning rate 0: the weights cannot move, the accuracy is the base's
    st, so, se = recipe("ablate_depth", args { "--checkpoint", ckpt, "--train_subset", "200", "--constraint", "space",
      "--layers", "2", "--treat_lr", "0", "--control", "false", "--out", out .. "_lr0" })
    rows = jsonl(out .. "_lr0/results.jsonl")
    tr = of_kind(rows, "treated")
    T.check(st == 0 and #tr == 1 and #of_kind(rows, "control") == 0 and tr[1].layer == LC[2] and tr[1].ch == nil
      and type(tr[1].sp) == "number" and tr[1].test_top1 == base_top1,
      "ablate_depth --constraint space --layers 2 --treat_lr 0: accuracy unchanged " .. (st ~= 0 and se:sub(-400) or ""))
  end)

  T.run("ablate_annotated", function()
    local out = dir .. "/ann"
    local st, so, se = recipe("ablate_annotated", args { "--checkpoint", ckpt, "--train_subset", "500", "--counts", "0,3", "--out", out })
    T.check(st == 0, "ablate_annotated runs " .. (st ~= 0 and se:sub(-600) or ""))
    local rows = jsonl(out .. "/results.jsonl")
    local tr = of_kind(rows, "treated")
    T.check(#tr == 2 and tr[1].per_class == 0 and tr[1].annotated == 0 and tr[1].sp == nil and tr[2].per_class == 3
      and tr[2].annotated == 30 and type(tr[2].sp) == "number" and tr[2].sp > 0 and tr[2].sp_layers[1] == LC[2]
      and tr[2].expand == 4, "ablate_annotated: 0 and 3 per class (30 samples), space-wise at the spatial layer, 4 px")
    -- 0 annotated samples is CE-only fine-tuning: ablate_depth's control with the same settings
    T.check(control_top1 ~= nil and tr[1].test_top1 == control_top1, "ablate_annotated: 0 samples = ablate_depth's control")
    T.check(is_svg(out .. "/annotated.svg") and has(slurp(out .. "/results.md"), "| per class | annotated |"), "ablate_annotated: plot and table")
    T.check(has(so, "| 3 | 30 |"), "ablate_annotated: summary table on stdout")
  end)

  T.run("discovery2", function()
    local out = dir .. "/d2"
    local st, so, se = recipe("discovery2", args { "--checkpoint", ckpt, "--train_subset", "2000", "--n", "300", "--eps", "0.1",
      "--out", out })
    T.check(st == 0, "discovery2 runs " .. (st ~= 0 and se:sub(-600) or ""))
    local rows = jsonl(out .. "/results.jsonl")
    local nr, adv = of_kind(rows, "normal")[1], of_kind(rows, "adversarial")[1]
    T.check(nr and adv and nr.eps == 0 and adv.eps == 0.1 and nr.n == 300 and adv.n == 300, "discovery2: normal and eps 0.1 lines")
    -- the normal samples through the raw-image path score as the test evaluation does
    T.check(nr and nr.accuracy == base_top1, "discovery2: normal accuracy on 300 = the base test top-1 on 300")
    local samples = jsonl(out .. "/samples.jsonl")
    local ok, n0 = samples ~= nil, 0
    for _, r in ipairs(samples or {}) do
      if r.eps == 0 then
        n0 = n0 + 1
        if r.pred ~= r.label then ok = false end
      end
    end
    T.check(ok and nr and nr.fooled == 0 and n0 == nr.kept and nr.kept > 0 and nr.kept <= math.floor(base_top1 * 300 + 0.5),
      "discovery2: the kept samples are correct ones")
    T.check(adv and adv.accuracy < nr.accuracy and adv.fooled > 0, "discovery2: FGSM at eps 0.1 lowers the accuracy")
    T.check(nr and in01(nr.cos_true) and in01(adv.cos_pred_fooled) and adv.cos_true < nr.cos_true,
      "discovery2: the adversarial patterns are further from the true class's row")
    T.check(samples and #samples == nr.kept + adv.kept, "discovery2: samples.jsonl has one line per kept sample and eps")
    T.check(is_svg(out .. "/adversarial.svg") and has(so, "| 0 (normal) |"), "discovery2: plot and summary table")
  end)

  T.run("gradcam", function()
    -- a second model for "treated": a fresh LeNet (seed 1)
    md.manual_seed(1)
    local other = dir .. "/other.safetensors"
    md.save(other, require("arch.lenet") {}:state_dict())
    local out = dir .. "/gc"
    local st, so, se = recipe("gradcam", { "--arch", "lenet", "--width", "1", "--base", ckpt, "--treated", other,
      "--test_subset", "300", "--n", "3", "--select", "first", "--quiet", "--out", out })
    T.check(st == 0, "gradcam runs " .. (st ~= 0 and se:sub(-600) or ""))
    local rows = jsonl(out .. "/results.jsonl")
    local imgs, sm = of_kind(rows, "image"), of_kind(rows, "summary")[1]
    T.check(#imgs == 3 and imgs[1].item == 1 and imgs[3].item == 3 and sm and sm.layer == LC[2],
      "gradcam: the first 3 test images, Grad-CAM at the spatial layer")
    T.check(sm and sm.base_top1 == base_top1 and in01(sm.treated_top1), "gradcam: the base model scores as in discovery1")
    local ok = true
    for _, r in ipairs(imgs) do
      local png = md.png_read(out .. "/" .. r.cam_base)
      if not (exists(out .. "/" .. r.image) and exists(out .. "/" .. r.cam_treated) and png:size(2) == 112 and in01(r.object_area)) then ok = false end
    end
    T.check(ok, "gradcam: image and overlay PNGs (28 px x 4)")
    local html = slurp(out .. "/index.html")
    T.check(has(html, "<img src='img/00001_base.png'>") and has(html, "</html>"), "gradcam: index.html shows the overlays")
    -- the same model twice: the same maps, the same shares
    st, so, se = recipe("gradcam", { "--arch", "lenet", "--width", "1", "--base", ckpt, "--treated", ckpt,
      "--test_subset", "300", "--n", "4", "--quiet", "--out", out .. "_same" })
    rows = jsonl(out .. "_same/results.jsonl")
    imgs = of_kind(rows, "image")
    ok = st == 0 and #imgs == 4
    for _, r in ipairs(imgs) do
      if r.base_pred == r.label or r.object_share_base ~= r.object_share_treated or r.base_pred ~= r.treated_pred then ok = false end
    end
    T.check(ok, "gradcam --select misclassified with one model twice: wrong images, equal shares " .. (st ~= 0 and se:sub(-400) or ""))
    -- a run directory holds base.safetensors and treated.safetensors
    os.execute("mkdir -p " .. q(dir .. "/run") .. " && cp " .. q(ckpt) .. " " .. q(dir .. "/run/base.safetensors") .. " && cp " ..
      q(other) .. " " .. q(dir .. "/run/treated.safetensors"))
    st = recipe("gradcam", { "--arch", "lenet", "--width", "1", "--run", dir .. "/run", "--test_subset", "100", "--n", "1",
      "--quiet", "--out", out .. "_run" })
    T.check(st == 0 and exists(out .. "_run/results.md"), "gradcam --run DIR")
    st, so, se = recipe("gradcam", { "--run", dir .. "/run", "--out", out .. "_bad" })
    T.check(st == 1 and has(se, "give the --arch and --width it was trained with"), "gradcam: a checkpoint of another architecture is named")
    st, so, se = recipe("gradcam", { "--out", out .. "_none" })
    T.check(st == 1 and has(se, "give --run DIR"), "gradcam: no models given")
  end)
end

if have_fm then
  T.run("ablate_expand on a generated cluttered set", function()
    local root = dir .. "/clut"
    local ok = os.execute(string.format("%s datasets/gen_cluttered.lua --out %s --train 10 --test 5 --size 32 --item 24 --samples none > %s 2>&1",
      q(exe), q(root), q(dir .. "/gen.log")))
    T.check(ok == true, "gen_cluttered makes a tiny set")
    local out = dir .. "/exp"
    local st, so, se = recipe("ablate_expand", { "--arch", "vgg", "--width", "0.125", "--data", "cluttered", "--data_root", root,
      "--train_subset", "0", "--test_subset", "0", "--epochs", "1", "--batch", "16", "--T", "5", "--J", "2", "--annotated", "3",
      "--values", "0,50", "--quiet", "--out", out })
    T.check(st == 0, "ablate_expand runs " .. (st ~= 0 and se:sub(-600) or ""))
    local rows = jsonl(out .. "/results.jsonl")
    local b, tr = of_kind(rows, "base")[1], of_kind(rows, "treated")
    T.check(b and b.n_test == 50, "ablate_expand: the whole tiny test split")
    -- 50 px at 224 is 7 px at 32; the space-wise layer is the deepest conv at >= 7x7
    local vgg = require("arch.vgg") { in_channels = 3, num_classes = 10, input_size = 32, width = 0.125 }
    local spatial = common.spatial_layer(vgg, { info = { c = 3, h = 32, w = 32 } })
    T.check(common.feature_sizes(vgg, { info = { c = 3, h = 32, w = 32 } })[spatial][2] >= 7, "VGG at 32 px has a conv map >= 7x7")
    T.check(#tr == 2 and tr[1].expand_224 == 0 and tr[1].expand_px == 0 and tr[2].expand_224 == 50 and tr[2].expand_px == 7
      and tr[1].sp_layers[1] == spatial and tr[1].annotated == 30 and type(tr[1].sp) == "number" and in01(tr[2].test_top1),
      "ablate_expand: 0 and 50 px at 224 (0 and 7 px), masks from the data set")
    T.check(is_svg(out .. "/expand.svg") and has(slurp(out .. "/results.md"), "| px at 224 | input px |") and has(so, "| 50 | 7 |"),
      "ablate_expand: plot and tables")
  end)
end

T.run("options of every recipe", function()
  for _, name in ipairs { "ablate_depth", "ablate_annotated", "ablate_expand", "discovery1", "discovery2", "gradcam" } do
    local st, so = recipe(name, { "--help" })
    T.check(st == 0 and has(so, "usage: mdoctor recipes/" .. name .. ".lua") and has(so, "--out"), name .. " --help")
    local se
    st, so, se = recipe(name, { "--no_such_option", "1" })
    T.check(st == 1 and has(se, "unknown option '--no_such_option'") and has(se, "usage:"), name .. ": an unknown option is an error")
  end
  local st, _, se = recipe("ablate_depth", { "--constraint", "neither" })
  T.check(st == 1 and has(se, "--constraint must be channel, space or both"), "ablate_depth: a bad --constraint")
  st, _, se = recipe("ablate_annotated", { "--counts", "0,-5" })
  T.check(st == 1 and has(se, "--counts must be integers >= 0"), "ablate_annotated: a bad --counts")
  st, _, se = recipe("ablate_expand", { "--data", dir .. "/nowhere" })
  T.check(st == 1 and has(se, "no data set at " .. dir .. "/nowhere/train"), "a missing image folder is named")
end)
-- }======================================================

T.cleanup()
T.summary()
