-- tests/lua/test_pipeline.lua -- recipes/doctor.lua end to end, from the
-- outside (a child process, as a user runs it), on tiny settings:
--   1. a tiny generated cluttered data set (datasets/gen_cluttered.lua) in a
--      temporary folder; LeNet paper form, and VGG (width 0.125) code form
--   2. Fashion-MNIST with --train_subset 600, explicit layer paths, no
--      space-wise layers (only when the data set is installed)
--   3. bad options fail with a message
-- Each run: exit status 0, the printed lines (base / treated accuracy and the
-- report path, consistent with each other and with metrics.jsonl), the run
-- directory (base/treated state dicts load into the architecture,
-- diagnosis.safetensors holds map.<layer> (classes, kernels) and the
-- matching irrelevant.<layer>, every metrics.jsonl line parses, report.html
-- refers only to files that exist).
local T = dofile("tests/lua/harness.lua")
local md = require "mdoctor"
local doctor = require "mdoctor.doctor"

local exe, q, slurp, exists = T.exe, T.shq, T.slurp, T.exists
local dir = T.tmpdir()

--- run(args) -> ok, stdout, stderr (one thread: the suite runs on busy machines)
local nrun = 0
local function run(args)
  nrun = nrun + 1
  local out, err = dir .. "/out" .. nrun, dir .. "/err" .. nrun
  local parts = {}
  for i, a in ipairs(args) do parts[i] = q(a) end
  local cmd = string.format("MD_NUM_THREADS=1 %s %s >%s 2>%s", q(exe), table.concat(parts, " "), q(out), q(err))
  local ok = os.execute(cmd)
  return ok == true, slurp(out) or "", slurp(err) or ""
end

-- metrics.jsonl is read with the recipes' JSON reader (recipes/common.lua),
-- which errors on anything malformed (so a bad line fails the test)
local json_decode = require("common").json_decode

--- check one finished run: o = {out=, arch=, width=, c=, size=, classes=,
-- layers={paths}, kernels={[path]=C}, form=, sp=bool, explain=N}
local function check_run(tag, ok, stdout, stderr, o)
  T.check(ok, tag .. ": exit status 0" .. (ok and "" or ("\n" .. stdout .. "\n" .. stderr)))
  if not ok then return end
  -- printed lines
  local b1, b5 = stdout:match("base:%s+test top%-1 ([%d.]+)%%%s+top%-5 ([%d.]+)%%")
  local t1, t5, tb, dp = stdout:match("treated: test top%-1 ([%d.]+)%%%s+top%-5 ([%d.]+)%%%s+%(base ([%d.]+)%%, ([-+][%d.]+) points%)")
  local rp = stdout:match("report: ([^\n]+)")
  T.check(b1 and t1 and rp, tag .. ": prints the base and treated accuracies and the report path")
  if not (b1 and t1 and rp) then print(stdout) return end
  b1, b5, t1, t5, tb, dp = tonumber(b1), tonumber(b5), tonumber(t1), tonumber(t5), tonumber(tb), tonumber(dp)
  T.check(b1 >= 0 and b1 <= b5 and b5 <= 100 and t1 >= 0 and t1 <= t5 and t5 <= 100,
    string.format("%s: 0 <= top-1 <= top-5 <= 100 (base %g/%g, treated %g/%g)", tag, b1, b5, t1, t5))
  T.check(tb == b1 and math.abs((t1 - b1) - dp) < 0.011, tag .. ": the treated line repeats the base and the difference")
  T.check(rp == o.out .. "/report.html", tag .. ": report path " .. rp)
  local data_line = stdout:match("data: ([^\n]+)")
  T.check(data_line and data_line:find(string.format("%d classes, %dx%dx%d", o.classes, o.c, o.size, o.size), 1, true),
    tag .. ": data line " .. tostring(data_line))
  if o.ntrain then
    T.check(data_line and data_line:find(o.ntrain .. " train", 1, true), tag .. ": " .. o.ntrain .. " training items")
  end

  -- the state dicts load into the architecture
  local arch = require("arch." .. o.arch)
  local function fresh() return arch { in_channels = o.c, num_classes = o.classes, input_size = o.size, width = o.width } end
  local base_sd = md.load(o.out .. "/base.safetensors")
  local treated_sd = md.load(o.out .. "/treated.safetensors")
  local okb = pcall(function() fresh():load_state_dict(base_sd) end)
  local okt = pcall(function() fresh():load_state_dict(treated_sd) end)
  T.check(okb and okt, tag .. ": base and treated state dicts load (strict) into " .. o.arch)
  local changed = false
  for k, v in pairs(base_sd) do
    if v:dtype() ~= "int64" and md.max(md.abs(v - treated_sd[k])):item() > 0 then changed = true end
  end
  T.check(changed, tag .. ": treatment changed the weights")

  -- the diagnosis
  local diag = md.load(o.out .. "/diagnosis.safetensors")
  for _, l in ipairs(o.layers) do
    local map, irr = diag["map." .. l], diag["irrelevant." .. l]
    local want = string.format("md.Size{%d, %d}", o.classes, o.kernels[l])
    T.check(map and tostring(map:shape()) == want, string.format("%s: map.%s is (classes, kernels) %s", tag, l, want))
    T.check(irr and tostring(irr:shape()) == want, string.format("%s: irrelevant.%s is %s", tag, l, want))
    if map and irr then
      T.check(md.max(md.neg(map)):item() <= 0 and md.max(map):item() > 0, tag .. ": map." .. l .. " >= 0, not all 0")
      T.close(irr, doctor.channel_mask(map, { form = o.form, v = 0.1, theta = 0.2 }), 0, 0,
        tag .. ": irrelevant." .. l .. " = channel_mask(map." .. l .. ")")
    end
  end
  local nkeys = 0
  for _ in pairs(diag) do nkeys = nkeys + 1 end
  T.check(nkeys == 2 * #o.layers, string.format("%s: diagnosis holds %d entries (map and irrelevant per layer)", tag, nkeys))

  -- metrics.jsonl
  local phases, bad = {}, nil
  for line in io.lines(o.out .. "/metrics.jsonl") do
    local okj, v = pcall(json_decode, line)
    if okj and type(v) == "table" then phases[#phases + 1] = v else bad = bad or line end
  end
  T.check(not bad, tag .. ": every metrics.jsonl line is a JSON object" .. (bad and (" (bad: " .. bad .. ")") or ""))
  local seq = {}
  for i, p in ipairs(phases) do seq[i] = tostring(p.phase) end
  -- the CE-only control (on by default) is evaluated last
  if seq[5] == "control_eval" then
    T.check(type(phases[5].test_top1) == "number", tag .. ": control_eval has a test accuracy")
    seq[5], phases[5] = nil, nil
  end
  T.check(table.concat(seq, ",") == "base,base_eval,treat,treated_eval",
    tag .. ": metrics phases " .. table.concat(seq, ","))
  if #phases == 4 then
    T.close(phases[2].test_top1 * 100, b1, 0, 0.006, tag .. ": base_eval test_top1 = the printed base accuracy")
    T.close(phases[4].test_top1 * 100, t1, 0, 0.006, tag .. ": treated_eval test_top1 = the printed one")
    local tr = phases[3]
    T.check(type(tr.ce) == "number" and type(tr.ch) == "number" and type(tr.loss) == "number",
      tag .. ": treat line has loss, ce, ch")
    T.check((type(tr.sp) == "number") == o.sp, tag .. (o.sp and ": treat line has sp" or ": no sp without sp layers"))
    if type(tr.ce) == "number" and type(tr.ch) == "number" then
      -- loss = ce + alpha ch + beta sp as batch means (alpha = beta = 1)
      T.close(tr.loss, tr.ce + tr.ch + (tr.sp or 0), 1e-4, 1e-5, tag .. ": treat loss = ce + ch + sp")
    end
  end

  -- report.html refers only to files that exist
  local html = slurp(o.out .. "/report.html") or ""
  T.check(html:find("</html>", 1, true), tag .. ": report.html is complete")
  local refs, missing, imgs = 0, {}, 0
  for attr, ref in html:gmatch("(%a+)%s*=%s*['\"]([^'\"]+)['\"]") do
    if (attr == "src" or attr == "href") and not ref:match("^#") and not ref:match("^data:") then
      refs = refs + 1
      if attr == "src" then imgs = imgs + 1 end
      if ref:match("^%a+://") or ref:sub(1, 1) == "/" or not exists(o.out .. "/" .. ref) then missing[#missing + 1] = ref end
    end
  end
  T.check(imgs > 0 and #missing == 0, string.format("%s: report.html: %d references (%d images), all local files that exist%s",
    tag, refs, imgs, #missing > 0 and (" -- missing: " .. table.concat(missing, ", ")) or ""))
  -- images of the run directory are PNG files
  local pngs = 0
  for _, f in ipairs(T.ls(o.out .. "/img")) do
    local s = slurp(o.out .. "/img/" .. f)
    if s and s:sub(1, 8) == "\137PNG\r\n\26\n" then pngs = pngs + 1 end
  end
  T.check(pngs > 0 and pngs == #T.ls(o.out .. "/img"), tag .. ": the img folder holds PNG files only")
  local explained = 0
  for _ in html:gmatch("img/s%d+_img%.png") do explained = explained + 1 end
  T.check(explained <= o.explain, string.format("%s: at most --explain %d samples explained (%d)", tag, o.explain, explained))
end

-- {====================================================== 1. the cluttered set
T.run("pipeline on a tiny cluttered set", function()
  local data = dir .. "/cluttered"
  local ok, out, err = run { "datasets/gen_cluttered.lua", "--out", data, "--train", "4", "--test", "2",
    "--size", "32", "--item", "24", "--seed", "3", "--samples", "none" }
  T.check(ok, "gen_cluttered: exit status 0" .. (ok and "" or ("\n" .. out .. err)))
  if not ok then return end
  T.check(#T.ls(data .. "/train") == 10 and #T.ls(data .. "/masks/train") == 10, "gen_cluttered: 10 class folders with masks")

  local runs = {
    { tag = "lenet paper", arch = "lenet", width = 0.5, form = "paper", layers = { "features.3" },
      kernels = { ["features.3"] = 8 } },
    { tag = "vgg code", arch = "vgg", width = 0.125, form = "code" },
  }
  for _, r in ipairs(runs) do
    r.out = dir .. "/run_" .. r.arch
    local args = { "recipes/doctor.lua", "--arch", r.arch, "--width", tostring(r.width), "--data", data,
      "--out", r.out, "--epochs", "1", "--T", "5", "--J", "2", "--explain", "2", "--batch", "16",
      "--annotated", "2", "--form", r.form, "--seed", "1", "--quiet" }
    ok, out, err = run(args)
    if not r.layers then -- the last conv of the architecture, as the recipe resolves "last"
      local m = require("arch." .. r.arch) { in_channels = 3, num_classes = 10, input_size = 32, width = r.width }
      local convs = doctor.conv_layers(m)
      local last = convs[#convs]
      r.layers, r.kernels = { last }, { [last] = doctor.find(m, last).out_channels }
    end
    check_run(r.tag, ok, out, err, { out = r.out, arch = r.arch, width = r.width, c = 3, size = 32, classes = 10,
      layers = r.layers, kernels = r.kernels, form = r.form, sp = true, explain = 2, ntrain = 40 })
  end
end)
-- }======================================================

-- {====================================================== 2. Fashion-MNIST
T.run("pipeline on Fashion-MNIST (600 training items)", function()
  if not exists(md.data.FASHION_MNIST_ROOT .. "/train-images-idx3-ubyte.gz") then
    print("note: Fashion-MNIST is not installed (" .. md.data.FASHION_MNIST_ROOT .. "); run skipped")
    return
  end
  local o = { out = dir .. "/run_fmnist", arch = "lenet", width = 0.5, c = 1, size = 28, classes = 10,
    layers = { "features.0", "features.3" }, kernels = { ["features.0"] = 3, ["features.3"] = 8 },
    form = "paper", sp = false, explain = 2, ntrain = 600 }
  local ok, out, err = run { "recipes/doctor.lua", "--arch", "lenet", "--width", "0.5", "--out", o.out,
    "--train_subset", "600", "--epochs", "1", "--T", "5", "--J", "2", "--explain", "2",
    "--ch_layers", "features.0,features.3", "--sp_layers", "none", "--quiet" }
  check_run("fashion-mnist", ok, out, err, o)
end)
-- }======================================================

-- {====================================================== 3. bad options
T.run("pipeline: bad options fail with a message", function()
  local ok, out, err = run { "recipes/doctor.lua", "--bogus", "1" }
  T.check(not ok and (out .. err):find("unknown option '--bogus'", 1, true), "an unknown option fails, naming it")
  ok, out, err = run { "recipes/doctor.lua", "--data", dir .. "/nowhere", "--out", dir .. "/run_bad" }
  T.check(not ok and (out .. err):find("no data set at " .. dir .. "/nowhere/train", 1, true),
    "a missing data folder fails, naming it")
  ok, out, err = run { "recipes/doctor.lua", "--T", "many" }
  T.check(not ok and (out .. err):find("--T needs a number", 1, true), "a non-number for a number option fails")
end)
-- }======================================================

T.cleanup()
T.summary()
