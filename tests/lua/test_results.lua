-- tests/lua/test_results.lua -- recipes/results.lua (the experiments behind
-- RESULTS.md) with tiny settings, in a subprocess with MD_NUM_THREADS=1:
-- LeNet on 400 Fashion-MNIST training items (300 train + 100 validation) when
-- the data set is installed, else VGG width 0.125 on a tiny generated
-- cluttered set (100 train images: 80 train + 20 validation; 30 test); 2
-- seeds, 2 alphas, 2 betas, 1 treatment epoch.
--
-- Checked: results.jsonl parses and has exactly the runs the grid asks for;
-- the alpha / beta used on the test runs are the argmax of the validation
-- runs; RESULTS.md holds the mean +- sample std recomputed here from the
-- JSON lines, the validation-chosen alpha / beta, the command line and a
-- verdict that agrees with the paired differences; --resume re-runs nothing
-- (same file, 0 runs), and after cutting results.jsonl short it re-runs only
-- the missing runs and gets the same numbers (the base model then comes from
-- its checkpoint).  Bad options are errors.
local T = dofile("tests/lua/harness.lua")
local common = require "common"

local dir = T.tmpdir()
local exe, q, slurp, has = T.exe, T.shq, T.slurp, T.has

local nrun = 0
local function results(args)
  nrun = nrun + 1
  local parts = {}
  for _, a in ipairs(args) do parts[#parts + 1] = q(a) end
  local outf, errf = dir .. "/stdout" .. nrun, dir .. "/stderr" .. nrun
  local ok, how, code = os.execute(string.format("MD_NUM_THREADS=1 %s recipes/results.lua %s > %s 2> %s", q(exe),
    table.concat(parts, " "), q(outf), q(errf)))
  local status = ok == true and 0 or (how == "exit" and code or 128 + (code or 0))
  return status, slurp(outf) or "", slurp(errf) or ""
end

-- the data set: Fashion-MNIST if installed, else a generated cluttered set
local FM = "/usr/share/datasets/fashion-mnist"
local have_fm = slurp(FM .. "/train-images-idx3-ubyte.gz") ~= nil
local out = dir .. "/run"
local A
if have_fm then
  A = { "--archs", "lenet", "--width", "1", "--datasets", "fashion_mnist", "--train_subset", "300", "--val", "100",
    "--test_subset", "300", "--batch", "32", "--epochs", "1" }
else
  print("note: no Fashion-MNIST at " .. FM .. ": using a generated cluttered set")
  local root = dir .. "/cluttered"
  local ok = os.execute(string.format("%s datasets/gen_cluttered.lua --out %s --train 10 --test 3 --size 32 --item 24 --samples none > %s 2>&1",
    q(exe), q(root), q(dir .. "/gen.log")))
  T.check(ok == true, "gen_cluttered makes a tiny set")
  A = { "--archs", "vgg", "--width", "0.125", "--datasets", "cluttered", "--cluttered_root", root, "--train_subset", "80",
    "--val", "20", "--batch", "16", "--epochs", "2" }
end
local NTRAIN, NVAL = have_fm and 300 or 80, have_fm and 100 or 20
for _, v in ipairs { "--seeds", "0,1", "--alphas", "0.1,1", "--betas", "0.1,1", "--T", "5", "--J", "1", "--annotated", "2",
  "--treat_epochs", "1", "--out", out } do A[#A + 1] = v end
local ARCH, DATA = A[2], A[6]
local function with(extra)
  local a = {}
  for _, v in ipairs(A) do a[#a + 1] = v end
  for _, v in ipairs(extra) do a[#a + 1] = v end
  return a
end

local function by_key(rows)
  local t = {}
  for _, r in ipairs(rows) do t[r.key] = r end
  return t
end
local function strip(r) -- a line without what may differ between equal runs
  local c = {}
  for k, v in pairs(r) do if k ~= "time_s" and k ~= "loaded" then c[k] = v end end
  return require("mdoctor.report").json(c)
end

--- mean and sample std (n - 1), in percent, as the table shows them
local function pm(xs)
  local n, s = #xs, 0
  for _, x in ipairs(xs) do s = s + x end
  local m = s / n
  local v = 0
  for _, x in ipairs(xs) do v = v + (x - m) ^ 2 end
  return string.format("%.2f ± %.2f", 100 * m, 100 * math.sqrt(v / (n - 1)))
end

local rows, first_jsonl
T.run("a tiny grid", function()
  local st, so, se = results(A)
  T.check(st == 0, "results.lua runs (status " .. st .. ")" .. (st ~= 0 and ("\n" .. se:sub(-1500)) or ""))
  T.check(has(so, string.format("%d train, %d validation (from the training split)", NTRAIN, NVAL)), "the validation split is held out of the training split")
  T.check(has(so, "runs: 15 ran, 0 skipped"), "2 bases + 5 validation runs + 2 x 4 test runs")
  T.check(has(se, "[results]"), "progress on stderr")
  first_jsonl = slurp(out .. "/results.jsonl")
  local ok, r = pcall(common.read_jsonl, out .. "/results.jsonl")
  T.check(ok, "results.jsonl parses" .. (ok and "" or (": " .. tostring(r))))
  rows = ok and r or {}
  local n = { base = 0, val = 0, test = 0 }
  local keys, unique = {}, true
  for _, x in ipairs(rows) do
    n[x.kind] = (n[x.kind] or 0) + 1
    if keys[x.key] then unique = false end
    keys[x.key] = true
  end
  T.check(#rows == 15 and n.base == 2 and n.val == 5 and n.test == 8, string.format("15 lines: 2 base, 5 val, 8 test (got %d: %d, %d, %d)", #rows, n.base, n.val, n.test))
  T.check(unique, "every run has its own key")
  for _, s in ipairs { 0, 1 } do
    local f = io.open(string.format("%s/base_%s_%s_%d.safetensors", out, ARCH, DATA, s), "rb")
    T.check(f ~= nil, "base checkpoint of seed " .. s)
    if f then f:close() end
  end
end)

T.run("validation choice and test runs", function()
  local base, val, test = {}, {}, {}
  for _, r in ipairs(rows) do
    if r.kind == "base" then base[r.seed] = r
    elseif r.kind == "val" then val[#val + 1] = r
    else test[#test + 1] = r end
  end
  T.check(base[0] and base[0].n_val == NVAL and base[0].n_test > 0, "the base line has validation and test sizes")
  local best_a, best_av, best_b, best_bv, all_val = nil, nil, nil, nil, true
  for _, r in ipairs(val) do
    if r.seed ~= 0 or r.n ~= NVAL then all_val = false end
    if r.variant == "channel" and (not best_av or r.top1 > best_av) then best_a, best_av = r.alpha, r.top1 end
    if r.variant == "space" and (not best_bv or r.top1 > best_bv) then best_b, best_bv = r.beta, r.top1 end
  end
  T.check(all_val, "validation runs use seed 0 and the validation items")
  local good, ntest_ok = true, true
  for _, r in ipairs(test) do
    local want_a = (r.variant == "channel" or r.variant == "all") and best_a or nil
    local want_b = (r.variant == "space" or r.variant == "all") and best_b or nil
    if r.alpha ~= want_a or r.beta ~= want_b then good = false end
    if r.n ~= base[r.seed].n_test or r.base_test_top1 ~= base[r.seed].test_top1 then ntest_ok = false end
  end
  T.check(best_a and best_b and good, string.format("test runs use the validation argmax (alpha %s, beta %s)", tostring(best_a), tostring(best_b)))
  T.check(ntest_ok, "test runs are scored on the base model's test items")
  -- the channel mask is applied: +channel's channel loss is reported, control has none
  local ctl, chn
  for _, r in ipairs(test) do
    if r.variant == "control" and r.seed == 0 then ctl = r end
    if r.variant == "channel" and r.seed == 0 then chn = r end
  end
  T.check(ctl and ctl.ch == nil and #ctl.ch_layers == 0 and chn and type(chn.ch) == "number" and #chn.ch_layers == 1,
    "control has no channel term, +channel has one")

  -- RESULTS.md against the JSON lines
  local md = slurp(out .. "/RESULTS.md")
  T.check(md ~= nil, "RESULTS.md written")
  md = md or ""
  local col = { base = {}, control = {}, channel = {}, space = {}, all = {} }
  for s = 0, 1 do col.base[#col.base + 1] = base[s].test_top1 end
  local byseed = {}
  for _, r in ipairs(test) do
    col[r.variant][#col[r.variant] + 1] = r.top1
    byseed[r.seed] = byseed[r.seed] or {}
    byseed[r.seed][r.variant] = r.top1
  end
  local want = string.format("| %s | %s | %s | %s | %s | %s | %g | %g | 2 |", ARCH, pm(col.base), pm(col.control), pm(col.channel),
    pm(col.space), pm(col.all), best_a, best_b)
  T.check(has(md, "## " .. DATA) and has(md, "| arch | base | control | +channel | +space | +all | alpha | beta | seeds |"), "a table per data set")
  T.check(has(md, want), "the row is mean ± sample std over the seeds: " .. want)
  T.check(has(md, "MD_NUM_THREADS=1 ") and has(md, "recipes/results.lua --archs " .. ARCH) and has(md, "--alphas 0.1,1 --betas 0.1,1"),
    "the command line")
  local d0, d1 = byseed[0].all - byseed[0].control, byseed[1].all - byseed[1].control
  local m = (d0 + d1) / 2
  local higher = (d0 > 0 and 1 or 0) + (d1 > 0 and 1 or 0)
  local verdict = (m > 0 and higher == 2) and "the treatment beat the control" or
    (m > 0 and "not a clear win over the control" or "the treatment did not beat the control")
  T.check(has(md, string.format("%s: +all %+.2f ± %.2f points against the control (higher on %d of 2 seeds): %s.", ARCH, 100 * m,
    100 * math.abs(d0 - d1) / math.sqrt(2), higher, verdict)), "the verdict follows the paired differences: " .. verdict)
  T.check(has(md, "Does the treatment beat the control?"), "the question is answered")
end)

T.run("--resume", function()
  local st, so = results(with { "--resume" })
  T.check(st == 0 and has(so, "runs: 0 ran, 15 skipped"), "a finished grid re-runs nothing")
  T.check(slurp(out .. "/results.jsonl") == first_jsonl, "results.jsonl unchanged")
  -- cut the file after the validation runs and the first seed's first test
  -- runs: only the missing runs are made, with the same numbers
  local lines = {}
  for l in (first_jsonl or ""):gmatch("[^\n]+") do lines[#lines + 1] = l end
  local f = assert(io.open(out .. "/results.jsonl", "w"))
  f:write(table.concat(lines, "\n", 1, 9), "\n")
  f:close()
  st, so = results(with { "--resume" })
  T.check(st == 0 and has(so, "runs: 6 ran, 9 skipped"), "a cut grid re-runs the 6 missing runs")
  local again = common.read_jsonl(out .. "/results.jsonl")
  T.check(#again == 15, "15 lines again")
  local old, same = by_key(rows), true
  for _, r in ipairs(again) do
    if not old[r.key] or strip(old[r.key]) ~= strip(r) then same = false end
  end
  T.check(same, "the resumed runs give the same numbers (base from its checkpoint)")
  -- other settings are not resumed from: a changed treat_lr runs everything
  st, so = results(with { "--resume", "--treat_lr", "0.001", "--seeds", "0" })
  T.check(st == 0 and has(so, "runs: 10 ran, 0 skipped"), "lines of other settings are not reused")
end)

T.run("bad options", function()
  local st, _, se = results(with { "--bogus", "1" })
  T.check(st == 1 and has(se, "unknown option '--bogus'"), "an unknown option is an error")
  st, _, se = results(with { "--val", "100000" })
  T.check(st == 1 and has(se, "leaves no training items"), "--val larger than the pool is an error")
  st, _, se = results(with { "--seeds", "0,x" })
  T.check(st == 1 and has(se, "not a number"), "a bad seed list is an error")
end)

T.cleanup()
T.summary()
