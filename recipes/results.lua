--- recipes/results.lua -- the measured tables behind RESULTS.md: for each
-- architecture x data set x seed, a base model and four treatments of fresh
-- copies of it (same schedule, same seed):
--
--   control    fine-tuning with CE only (what the extra epochs alone give)
--   +channel   CE + alpha * L_ch  (channel-wise constraint, Eq. 5)
--   +space     CE + beta * L_sp   (space-wise constraint, Eq. 6)
--   +all       CE + alpha * L_ch + beta * L_sp  (Eq. 7)
--
-- alpha and beta are chosen on a validation split (--val items held out of
-- the training split, never the test split), per architecture x data set,
-- with seed 0: alpha is the --alphas value whose +channel run scores best on
-- validation, beta the --betas value whose +space run does; +all uses both.
-- Every number reported is test top-1 on the test subset, mean +- sample std
-- over --seeds.
--
--   build/mdoctor recipes/results.lua [--option value ...]   (--help)
--
-- Writes to --out: results.jsonl (one line per run; kind base | val | test),
-- base_<arch>_<data>_<seed>.safetensors (loaded instead of trained when
-- present), RESULTS.md.  --resume skips every run whose line (same key, same
-- settings) is already in results.jsonl, so a long grid can be continued.
local md = require "mdoctor"
local util = require "mdoctor.util"
local common = require "common"

local NAME = "results"

-- the per-run options (arch, data, seed, checkpoint, alpha, beta) are set by
-- the recipe itself, not on the command line
local PER_RUN = { arch = true, data = true, data_root = true, seed = true, checkpoint = true, alpha = true, beta = true }
local function without(list)
  local out = {}
  for _, d in ipairs(list) do if not PER_RUN[d[1]] then out[#out + 1] = d end end
  return out
end

local DEFAULTS = common.options(without(common.BASE), without(common.DOCTOR), {
  { "archs", "vgg,resnet,mobilenetv2", "architectures (comma list of recipes/arch names)" },
  { "datasets", "fashion_mnist,cluttered", "data sets (comma list: fashion_mnist, cluttered, image folder roots)" },
  { "cluttered_root", "out/cluttered", "the generated masked set (build/mdoctor datasets/gen_cluttered.lua --out DIR)" },
  { "fmnist_root", "", "Fashion-MNIST folder (default: its standard place)" },
  { "seeds", "0,1,2", "seeds (comma list); the first one is used for the validation search" },
  { "val", 1000, "validation items held out of the training split (a fixed random choice)" },
  { "alphas", "0.01,0.1,1", "alpha grid (channel-wise weight) searched on validation" },
  { "betas", "0.01,0.1,1", "beta grid (space-wise weight) searched on validation" },
  { "ch_layers", "last", "S_ch: layers of the channel-wise constraint" },
  { "sp_layers", "spatial", "S_sp: layers of the space-wise constraint (spatial = deepest conv with a map >= 7x7)" },
  { "out", "out/results", "output folder" },
  { "resume", false, "skip runs whose result line is already in OUT/results.jsonl" },
})

local VARIANTS = { "control", "channel", "space", "all" }
local LABEL = { control = "control", channel = "+channel", space = "+space", all = "+all" }

local function say(o, fmt, ...)
  if not o.quiet then io.stderr:write(string.format("[results] " .. fmt .. "\n", ...)) end
end

-- {====================================================== small helpers
local function list_of(s, what)
  local out = {}
  for p in tostring(s):gmatch("[^,%s]+") do out[#out + 1] = p end
  if #out == 0 then error(NAME .. ": " .. what .. ": empty list", 0) end
  return out
end

local function copy(t)
  local c = {}
  for k, v in pairs(t) do c[k] = v end
  return c
end

--- mean and sample standard deviation (n - 1); std is nil for one value
local function mean_std(xs)
  local n = #xs
  if n == 0 then return nil, nil end
  local s = 0
  for _, x in ipairs(xs) do s = s + x end
  local m = s / n
  if n < 2 then return m, nil end
  local v = 0
  for _, x in ipairs(xs) do v = v + (x - m) ^ 2 end
  return m, math.sqrt(v / (n - 1))
end

--- "85.12 ± 0.34" for fractions (in percent); "-" when there are none
local function pm(xs, scale)
  scale = scale or 100
  local m, s = mean_std(xs)
  if not m then return "-" end
  return string.format("%.2f ± %s", scale * m, s and string.format("%.2f", scale * s) or "n/a")
end

local function shword(s)
  s = tostring(s)
  if s:match("^[%w%._/,=:+-]+$") then return s end
  return common.shq(s)
end

--- the exact command line of this run (with MD_NUM_THREADS when it is set)
local function command_line(args)
  local parts = {}
  local th = os.getenv("MD_NUM_THREADS")
  if th and th ~= "" then parts[#parts + 1] = "MD_NUM_THREADS=" .. shword(th) end
  parts[#parts + 1] = shword(arg and arg[-1] or "build/mdoctor")
  parts[#parts + 1] = shword(arg and arg[0] or "recipes/results.lua")
  for _, a in ipairs(args) do parts[#parts + 1] = shword(a) end
  return table.concat(parts, " ")
end

--- the settings a run's result depends on besides its key: lines of an
-- earlier run count for --resume only when these match
local SETTINGS = { "width", "train_subset", "test_subset", "val", "epochs", "lr", "batch", "form", "T", "J", "delta", "v",
  "theta", "annotated", "expand", "treat_epochs", "treat_lr", "ch_layers", "sp_layers" }
local function settings(o)
  local p = {}
  for _, k in ipairs(SETTINGS) do p[#p + 1] = k .. "=" .. tostring(o[k]) end
  return table.concat(p, " ")
end

--- the settings the base model depends on (kept next to its checkpoint)
local function base_settings(o)
  local p = {}
  for _, k in ipairs { "width", "train_subset", "val", "epochs", "lr", "batch" } do p[#p + 1] = k .. "=" .. tostring(o[k]) end
  return table.concat(p, " ")
end

local function gfmt(x) return x and string.format("%g", x) or "-" end

--- the key of a run (with the settings, what --resume matches)
local function run_key(kind, data, arch, seed, variant, alpha, beta)
  return string.format("%s|%s|%s|seed=%d|%s|alpha=%s|beta=%s", kind, data, arch, seed, variant or "-", gfmt(alpha), gfmt(beta))
end
--- the value in vals whose run (lookup(value); nil when there is none) has
-- the best top-1, and that top-1; the first of equal ones wins.  The one rule
-- for choosing alpha and beta, in the grid and in RESULTS.md.
local function best_of(vals, lookup)
  local best, bestv
  for _, v in ipairs(vals) do
    local r = lookup(v)
    if r and (not bestv or r.top1 > bestv) then best, bestv = v, r.top1 end
  end
  return best, bestv
end
-- }======================================================

-- {====================================================== data and the validation split
--- open a data set and split its training pool into train and validation:
-- the pool is the first train_subset + val items (all when there are
-- fewer); val items are a fixed random choice from it (an LCG with a fixed
-- seed, the same for every run seed), the rest is the training subset
local function open_split(o, data)
  local ro = copy(o)
  ro.data = data
  ro.data_root = data == "cluttered" and o.cluttered_root or (data == "fashion_mnist" and o.fmnist_root or "")
  ro.train_subset = 0 -- the split below picks the items
  local d = common.open_data(ro)
  local total = #d.train
  local want = o.train_subset > 0 and o.train_subset or total
  local npool = math.min(total, want + o.val)
  if o.val < 1 or o.val >= npool then
    error(string.format("%s: --val %d leaves no training items in %s (%d items in the pool)", NAME, o.val, data, npool), 0)
  end
  local pool = common.range(1, npool)
  local x = 12345
  for i = npool, 2, -1 do -- Fisher-Yates with a fixed LCG
    x = (x * 1103515245 + 12345) % 2147483648
    local j = x % i + 1
    pool[i], pool[j] = pool[j], pool[i]
  end
  local val, tr = {}, {}
  for i = 1, npool do
    if i <= o.val then val[#val + 1] = pool[i] else tr[#tr + 1] = pool[i] end
  end
  table.sort(val)
  table.sort(tr)
  d.train_idx, d.val_idx = tr, val
  d.sub = md.data.subset(d.train, tr)
  d.name = data
  -- the validation split seen through common.evaluate
  d.val_view = setmetatable({ test = d.train, test_idx = val, n_test = #val }, { __index = d })
  return d, ro
end
-- }======================================================

local function main(args)
  local o = common.parse(NAME, DEFAULTS, args)
  local archs = list_of(o.archs, "--archs")
  local datasets = list_of(o.datasets, "--datasets")
  local seeds = common.numbers(o.seeds, NAME .. ": --seeds")
  for _, s in ipairs(seeds) do
    if math.type(s) ~= "integer" then error(NAME .. ": --seeds must be integers", 0) end
  end
  local alphas = common.numbers(o.alphas, NAME .. ": --alphas")
  local betas = common.numbers(o.betas, NAME .. ": --betas")
  o.seed = seeds[1]
  common.setup(o)
  local t0 = md.now()
  local sig = settings(o)
  local jpath = o.out .. "/results.jsonl"
  local done = {} -- key -> line (lines with these settings)
  if o.resume then
    local f = io.open(jpath, "r")
    if f then
      f:close()
      for _, r in ipairs(common.read_jsonl(jpath)) do
        if r.key and r.settings == sig then done[r.key] = r end
      end
    end
  else
    os.remove(jpath)
  end
  local nran, nskipped = 0, 0
  local function record(obj)
    obj.settings = sig
    require("mdoctor.report").jsonl(jpath, obj)
    done[obj.key] = obj
    nran = nran + 1
  end
  print(string.format("mdoctor %s | %s | %s | archs %s | data %s | seeds %s | width %g | form %s", md.version, md.blas_info(),
    NAME, o.archs, o.datasets, o.seeds, o.width, o.form))

  for _, data in ipairs(datasets) do
    local d, dro = open_split(o, data)
    print(string.format("data %s: %d train, %d validation (from the training split), %d test, %d classes, %dx%dx%d",
      data, #d.train_idx, #d.val_idx, d.n_test, d.K, d.info.c, d.info.h, d.info.w))
    local expand = o.expand >= 0 and o.expand or common.expand_px(30, d.info.h)
    for _, arch in ipairs(archs) do
      local states = {} -- seed -> {ro=, base=, sifted=, masks=, ...} built on demand
      local function state(seed)
        if states[seed] then return states[seed] end
        local ro = copy(dro)
        ro.arch, ro.seed, ro.out = arch, seed, nil
        ro.alpha, ro.beta = 0, 0
        local ckpt = string.format("%s/base_%s_%s_%d.safetensors", o.out, arch, data:gsub("[^%w_%-]", "_"), seed)
        -- the checkpoint is loaded when present, unless its side file says
        -- it was trained with other settings (then it is trained again)
        local bsig = base_settings(o)
        local f = io.open(ckpt, "rb")
        local have = f ~= nil
        if f then f:close() end
        local side = io.open(ckpt .. ".settings", "r")
        if side then
          local was = side:read("a")
          side:close()
          if have and was ~= bsig then
            say(o, "%s was trained with other settings (%s): training again", ckpt, was)
            have = false
          end
        end
        ro.checkpoint = have and ckpt or ""
        say(o, "%s %s seed %d: base model (%s)", data, arch, seed, have and ("loading " .. ckpt) or "training")
        local t = md.now()
        local base, ev = common.base_model(ro, d)
        if not have then
          md.save(ckpt, base:state_dict())
          require("mdoctor.report").write_file(ckpt .. ".settings", bsig)
        end
        local st = { ro = ro, base = base, ev = ev, ckpt = ckpt }
        local key = run_key("base", data, arch, seed)
        if not done[key] then
          local vev = common.evaluate(ro, d.val_view, base)
          record { kind = "base", key = key, data = data, arch = arch, seed = seed, test_top1 = ev.top1, n_test = ev.n,
            val_top1 = vev.top1, n_val = vev.n, parameters = base:num_parameters(), loaded = ro.checkpoint ~= "",
            time_s = md.now() - t }
        end
        -- what the treatments need, with the seed reset so that a loaded and
        -- a trained base model give the same diagnosis
        md.manual_seed(seed)
        st.ch_layers = common.layers(base, o.ch_layers, 1, d)
        st.sp_layers = common.layers(base, o.sp_layers, 1, d)
        st.sifted = common.sift(ro, d, base, o.annotated)
        st.ann = common.annotated(d, st.sifted, o.annotated)
        st.masks = common.channel_masks(o, d, base, st.sifted, st.ch_layers)
        states[seed] = st
        return st
      end
      -- one treatment of a fresh copy of the seed's base model, evaluated on
      -- validation (kind "val") or test (kind "test")
      local function run(kind, seed, variant, alpha, beta)
        local key = run_key(kind, data, arch, seed, variant, alpha, beta)
        if done[key] then nskipped = nskipped + 1; return done[key] end
        local st = state(seed)
        local ro = copy(st.ro)
        ro.alpha, ro.beta = alpha or 0, beta or 0
        local ch = (variant == "channel" or variant == "all")
        local sp = (variant == "space" or variant == "all")
        say(o, "%s %s seed %d: %s %s (alpha %s, beta %s)", data, arch, seed, kind, LABEL[variant], gfmt(alpha), gfmt(beta))
        local t = md.now()
        local model, tev, h = common.treat(ro, d, st.base, { ch_layers = ch and st.ch_layers or {}, ch_masks = st.masks,
          sp_layers = sp and st.sp_layers or {}, annotated = sp and st.ann or {}, expand = expand })
        local ev = kind == "val" and common.evaluate(ro, d.val_view, model) or tev
        local last = h[#h] or {}
        local line = { kind = kind, key = key, data = data, arch = arch, seed = seed, variant = variant, alpha = alpha,
          beta = beta, top1 = ev.top1, n = ev.n, base_test_top1 = st.ev.top1, ce = last.ce, ch = last.ch, sp = last.sp,
          ch_layers = ch and st.ch_layers or {}, sp_layers = sp and st.sp_layers or {}, expand = expand,
          time_s = md.now() - t }
        record(line)
        print(string.format("%-13s %-12s seed %d %-5s %-9s alpha %-5s beta %-5s top-1 %.2f%% (%s)", data, arch, seed, kind,
          LABEL[variant], gfmt(alpha), gfmt(beta), 100 * ev.top1, util.hms(line.time_s)))
        return line
      end

      -- the validation search (first seed): control for reference, alpha
      -- with the channel-wise term alone, beta with the space-wise one alone
      for _, seed in ipairs(seeds) do -- base lines already there count as skipped runs
        if done[run_key("base", data, arch, seed)] then nskipped = nskipped + 1 end
      end
      local s0 = seeds[1]
      run("val", s0, "control")
      local best_a, best_av = best_of(alphas, function(a) return run("val", s0, "channel", a, nil) end)
      local best_b, best_bv = best_of(betas, function(b) return run("val", s0, "space", nil, b) end)
      say(o, "%s %s: validation picks alpha %g (%.2f%%), beta %g (%.2f%%)", data, arch, best_a, 100 * best_av, best_b, 100 * best_bv)
      for _, seed in ipairs(seeds) do
        if not done[run_key("base", data, arch, seed)] then state(seed) end
        run("test", seed, "control")
        run("test", seed, "channel", best_a, nil)
        run("test", seed, "space", nil, best_b)
        run("test", seed, "all", best_a, best_b)
      end
      states = nil
      collectgarbage()
    end
  end

  -- {==================================================== RESULTS.md
  local function get(key) return done[key] end
  local out = { "# Model Doctor: measured results\n",
    string.format("Test top-1 (%%) on the test subset, mean ± sample standard deviation over seeds %s. " ..
      "Each seed trains its own base model; control, +channel, +space and +all fine-tune fresh copies of it with the same " ..
      "schedule (%d epoch(s), lr %g, SGD momentum 0.9) and the same seed. control is CE only, +channel adds alpha * L_ch " ..
      "(Eq. 5) at %s, +space adds beta * L_sp (Eq. 6) at %s with %d annotated samples per class, +all adds both (Eq. 7). " ..
      "alpha and beta were chosen on %d validation items held out of the training split (seed %d; alpha from {%s} " ..
      "with +channel, beta from {%s} with +space), never on the test split.\n",
      o.seeds, o.treat_epochs, o.treat_lr, o.ch_layers, o.sp_layers, o.annotated, o.val, seeds[1], o.alphas, o.betas),
    string.format("Settings: %s.\n", sig),
    "Reproduce every number below with:\n",
    "    " .. command_line(args) .. "\n",
    "(`--resume` continues an interrupted run from results.jsonl; the numbers do not change.)\n" }
  for _, data in ipairs(datasets) do
    local rows, verdicts, valnotes = {}, {}, {}
    local wins, narch = 0, 0
    for _, arch in ipairs(archs) do
      local s0 = seeds[1]
      local function val(variant, a, b) return get(run_key("val", data, arch, s0, variant, a, b)) end
      local best_a = best_of(alphas, function(a) return val("channel", a, nil) end)
      local best_b = best_of(betas, function(b) return val("space", nil, b) end)
      local vparts = {}
      local vc = val("control")
      if vc then vparts[#vparts + 1] = string.format("control %.2f", 100 * vc.top1) end
      for _, a in ipairs(alphas) do
        local r = val("channel", a, nil)
        if r then vparts[#vparts + 1] = string.format("alpha %g: %.2f", a, 100 * r.top1) end
      end
      for _, b in ipairs(betas) do
        local r = val("space", nil, b)
        if r then vparts[#vparts + 1] = string.format("beta %g: %.2f", b, 100 * r.top1) end
      end
      valnotes[#valnotes + 1] = string.format("%s: %s.", arch, table.concat(vparts, ", "))
      local cols = { base = {}, control = {}, channel = {}, space = {}, all = {} }
      local diffs, higher = {}, 0
      for _, seed in ipairs(seeds) do
        local b = get(run_key("base", data, arch, seed))
        if b then cols.base[#cols.base + 1] = b.test_top1 end
        local ab = { control = { nil, nil }, channel = { best_a, nil }, space = { nil, best_b }, all = { best_a, best_b } }
        for _, v in ipairs(VARIANTS) do
          local r = get(run_key("test", data, arch, seed, v, ab[v][1], ab[v][2]))
          if r then cols[v][#cols[v] + 1] = r.top1 end
        end
        local c = get(run_key("test", data, arch, seed, "control"))
        local a = get(run_key("test", data, arch, seed, "all", best_a, best_b))
        if c and a then
          diffs[#diffs + 1] = a.top1 - c.top1
          if a.top1 > c.top1 then higher = higher + 1 end
        end
      end
      rows[#rows + 1] = { arch, pm(cols.base), pm(cols.control), pm(cols.channel), pm(cols.space), pm(cols.all),
        gfmt(best_a), gfmt(best_b), #cols.all }
      local m, s = mean_std(diffs)
      if m then
        narch = narch + 1
        local how
        if m > 0 and higher == #diffs then how = "the treatment beat the control"; wins = wins + 1
        elseif m > 0 then how = "higher on average but not on every seed: not a clear win over the control"
        else how = "the treatment did not beat the control" end
        verdicts[#verdicts + 1] = string.format("%s: +all %+.2f%s points against the control (higher on %d of %d seeds): %s.",
          arch, 100 * m, s and string.format(" ± %.2f", 100 * s) or "", higher, #diffs, how)
      end
    end
    out[#out + 1] = string.format("## %s\n", data)
    out[#out + 1] = common.md_table({ "arch", "base", "control", "+channel", "+space", "+all", "alpha", "beta", "seeds" }, rows)
    out[#out + 1] = string.format("**Does the treatment beat the control?** %s %s\n",
      narch == 0 and "No finished runs." or (wins == narch and
        string.format("Yes, for all %d architecture(s): +all scored higher than the CE-only control on every seed.", narch) or
        string.format("Not in general: +all beat the CE-only control on every seed for %d of %d architecture(s).", wins, narch)),
      table.concat(verdicts, " "))
    out[#out + 1] = string.format("Validation top-1 (%%, seed %d) behind the choice of alpha and beta: %s\n", seeds[1],
      table.concat(valnotes, " "))
  end
  local mdpath = o.out .. "/RESULTS.md"
  require("mdoctor.report").write_file(mdpath, table.concat(out, "\n"))
  -- }====================================================
  print(string.format("runs: %d ran, %d skipped (already in %s)", nran, nskipped, jpath))
  print(string.format("results: %s, %s (%s)", mdpath, jpath, util.hms(md.now() - t0)))
end

main(arg or {})
