--- recipes/common.lua -- what the experiment recipes share (ablate_*.lua,
-- discovery*.lua, gradcam.lua):
--
--   options    a declarative list of {name, default, help}; --name value or
--              --name=value; an unknown option prints the usage on stderr and
--              is an error (exit status 1); --help prints it and exits 0
--   data       Fashion-MNIST (default) or an image folder with masks (the
--              generated cluttered set), train/test subsets, loaders
--   model      build an architecture of recipes/arch, train a base model or
--              load a checkpoint, copy it, treat a copy, evaluate
--   output     JSON lines, markdown tables (also printed), SVG line charts
--
--   local common = require "common"
--   local o = common.parse("ablate_depth", common.options(common.BASE, common.DOCTOR, {...}), arg)
local md = require "mdoctor"
local doctor = require "mdoctor.doctor"
local train = require "mdoctor.train"
local report = require "mdoctor.report"
local util = require "mdoctor.util"

local common = {}

-- {====================================================== options
--- the data, model and base-training options every recipe takes
common.BASE = {
  { "arch", "vgg", "vgg | resnet | mobilenetv2 | lenet (recipes/arch)" },
  { "width", 0.25, "channel width multiplier of the architecture" },
  { "data", "fashion_mnist", "fashion_mnist | cluttered | <image folder root with train/ test/ [masks/]>" },
  { "data_root", "", "where the data set lives (default: its standard place; cluttered: out/cluttered)" },
  { "train_subset", 6000, "use the first N training items (0 = all)" },
  { "test_subset", 2000, "evaluate on the first N test items (0 = all)" },
  { "epochs", 3, "epochs to train the base model (when no --checkpoint)" },
  { "lr", 0.05, "base training learning rate (SGD, momentum 0.9, cosine)" },
  { "batch", 128, "batch size" },
  { "checkpoint", "", "load this base model (safetensors) instead of training one" },
  { "seed", 0, "random seed (model init, shuffling, noise)" },
  { "threads", 0, "threads (0 = MD_NUM_THREADS or all cores)" },
  { "quiet", false, "no progress lines on stderr" },
}

--- the Model Doctor knobs (see recipes/doctor.lua and lua/mdoctor/doctor.lua)
common.DOCTOR = {
  { "form", "paper", "paper (|grad|, J noisy copies, v, runner-up) | code (relu(grad), theta)" },
  { "T", 50, "most confident training samples per class used for the diagnosis" },
  { "J", 4, "noise draws per sample (paper form)" },
  { "delta", 0.1, "feature noise range: sigma ~ U[-delta, delta]" },
  { "v", 0.1, "paper form: kernel irrelevant if A[n,k] < v * max_k A[n,k]" },
  { "theta", 0.2, "code form: threshold on the min-max normalised map" },
  { "annotated", 20, "low-confidence samples per class given masks (space-wise)" },
  { "expand", -1, "mask expansion in input pixels (-1: the paper's 30 px at 224 px, scaled to the input)" },
  { "alpha", 1.0, "weight of the channel-wise loss" },
  { "beta", 1.0, "weight of the space-wise loss" },
  { "treat_epochs", 1, "fine-tuning epochs per treatment" },
  { "treat_lr", 0.005, "fine-tuning learning rate (SGD, momentum 0.9)" },
}

--- options(list, list, ...) -> one list; an entry whose name is already
-- there replaces it in place (so a recipe can change a default)
function common.options(...)
  local out, pos = {}, {}
  for _, list in ipairs { ... } do
    for _, d in ipairs(list) do
      if pos[d[1]] then out[pos[d[1]]] = d
      else out[#out + 1] = d; pos[d[1]] = #out end
    end
  end
  return out
end

function common.usage(name, defaults, f)
  f = f or io.stdout
  f:write(string.format("usage: mdoctor recipes/%s.lua [--option value ...]\n\noptions:\n", name))
  for _, d in ipairs(defaults) do
    f:write(string.format("  --%-14s %-16s %s\n", d[1], tostring(d[2]), d[3]))
  end
end

--- parse(name, defaults, args) -> o (every option set; numbers and booleans
-- converted).  --help exits 0; a bad option is an error after the usage.
function common.parse(name, defaults, args)
  local o, known = {}, {}
  for _, d in ipairs(defaults) do o[d[1]], known[d[1]] = d[2], d end
  local function bad(msg)
    common.usage(name, defaults, io.stderr)
    error(name .. ": " .. msg, 0)
  end
  local i = 1
  args = args or {}
  while i <= #args do
    local a = args[i]
    if a == "-h" or a == "--help" then common.usage(name, defaults); os.exit(0) end
    local k, v = a:match("^%-%-([%w_]+)=(.*)$")
    if not k then
      k = a:match("^%-%-([%w_]+)$")
      if k and known[k] and type(o[k]) == "boolean" then
        -- a flag; "--quiet false" is accepted too
        local nxt = args[i + 1]
        if nxt == "true" or nxt == "false" or nxt == "1" or nxt == "0" then i = i + 1; v = nxt else v = "true" end
      elseif k then i = i + 1; v = args[i] end
    end
    if not k or not known[k] then bad("unknown option '" .. tostring(a) .. "'") end
    if v == nil then bad("option --" .. k .. " needs a value") end
    local d = known[k][2]
    if type(d) == "number" then
      local n = tonumber(v)
      if not n then bad("--" .. k .. " needs a number, got '" .. v .. "'") end
      if math.type(d) == "integer" then
        n = math.tointeger(n) or bad("--" .. k .. " needs an integer, got '" .. v .. "'")
      end
      o[k] = n
    elseif type(d) == "boolean" then
      if v ~= "true" and v ~= "false" and v ~= "1" and v ~= "0" then bad("--" .. k .. " needs true or false, got '" .. v .. "'") end
      o[k] = v == "true" or v == "1"
    else o[k] = v end
    i = i + 1
  end
  return o
end

--- "0,5,10" -> {0, 5, 10} (numbers); an error names the option
function common.numbers(s, what)
  local out = {}
  for p in tostring(s):gmatch("[^,%s]+") do
    local n = tonumber(p)
    if not n then error(string.format("%s: '%s' is not a number (a comma list is expected)", what or "list", p), 0) end
    out[#out + 1] = math.tointeger(n) or n
  end
  if #out == 0 then error((what or "list") .. ": empty list", 0) end
  return out
end
-- }======================================================

-- {====================================================== setup
--- threads, seed, the output folder (with img/), quiet progress lines
function common.setup(o)
  if o.threads and o.threads > 0 then md.set_num_threads(o.threads) end
  md.manual_seed(o.seed or 0)
  if o.quiet then util.quiet = true end
  if o.out then
    assert(os.execute("mkdir -p " .. common.shq(o.out .. "/img")), "cannot create " .. o.out)
  end
end

function common.shq(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

function common.range(a, b)
  local t = {}
  for i = a, b do t[#t + 1] = i end
  return t
end

local function isdir(p)
  local ok, _, code = os.rename(p, p)
  return ok or code == 13
end
-- }======================================================

-- {====================================================== data
--- open_data(o) -> d = {train=, test=, sub= (the train subset), train_idx=,
-- test_idx= (nil: all), mask_fn= (nil: masks come with the items), info=,
-- K=, names=, mean=, std= ((1,C,1,1) tensors), has_masks=}
function common.open_data(o)
  local data = md.data
  local d = {}
  if o.data == "fashion_mnist" then
    local root = o.data_root ~= "" and o.data_root or nil
    d.train = data.fashion_mnist { split = "train", root = root }
    d.test = data.fashion_mnist { split = "test", root = root }
    -- items on a black background: the object mask is the non-zero pixels
    d.mask_fn = function(raw) return md.gt(raw, 0.02) end
    d.has_masks = true
  else
    local root = o.data
    if o.data == "cluttered" then root = o.data_root ~= "" and o.data_root or "out/cluttered" end
    if not isdir(root .. "/train") then
      error(string.format("no data set at %s/train%s", root, o.data == "cluttered"
        and (" (make it with: build/mdoctor datasets/gen_cluttered.lua --out " .. root .. ")") or
        " (an image folder root/train/<class>/..., root/test/...)"), 0)
    end
    d.has_masks = isdir(root .. "/masks/train")
    d.train = data.image_folder { root = root .. "/train", masks = d.has_masks and (root .. "/masks/train") or nil }
    d.test = data.image_folder { root = root .. "/test", masks = d.has_masks and isdir(root .. "/masks/test")
      and (root .. "/masks/test") or nil }
  end
  d.info = d.train:info()
  d.K = d.info.classes
  d.names = {}
  for c = 1, d.K do d.names[c] = (d.info.class_names or {})[c] or tostring(c - 1) end
  local ntrain = o.train_subset > 0 and math.min(o.train_subset, #d.train) or #d.train
  d.train_idx = common.range(1, ntrain)
  d.sub = data.subset(d.train, d.train_idx)
  if o.test_subset > 0 and o.test_subset < #d.test then d.test_idx = common.range(1, o.test_subset) end
  d.n_test = d.test_idx and #d.test_idx or #d.test
  d.mean = md.tensor(d.info.mean):reshape(1, d.info.c, 1, 1)
  d.std = md.tensor(d.info.std):reshape(1, d.info.c, 1, 1)
  return d
end

--- loader over ds (normalised images); idx: 1-based items or nil (all)
function common.loader(o, ds, idx, shuffle, bs)
  return md.loader(ds, { batch_size = bs or o.batch, shuffle = shuffle or false, seed = o.seed, indices = idx,
    transform = { normalize = true }, drop_last = shuffle or false })
end

--- the mask expansion in input pixels: v px at 224 scaled to the input
-- size (the paper's numbers are for 224 x 224 images)
function common.expand_px(v, size)
  return math.floor(v * size / 224 + 0.5)
end
-- }======================================================

-- {====================================================== models
function common.build_model(o, d)
  local arch = require("arch." .. o.arch)
  return arch { in_channels = d.info.c, num_classes = d.K, input_size = d.info.h, width = o.width }
end

--- a fresh model with m's weights
function common.copy_model(o, d, m)
  local c = common.build_model(o, d)
  c:load_state_dict(m:state_dict())
  return c
end

--- test top-1 (and the whole evaluate() table) on the test subset
function common.evaluate(o, d, model)
  return train.evaluate(model, common.loader(o, d.test, d.test_idx, false, 256), d.K)
end

--- the base model: loaded from --checkpoint or trained on the train
-- subset; saved to OUT/base.safetensors.  Returns model, its test evaluation
function common.base_model(o, d)
  md.manual_seed(o.seed) -- the initial weights depend on the seed only
  local model = common.build_model(o, d)
  if o.checkpoint ~= "" then
    model:load_state_dict(md.load(o.checkpoint))
    print("base model: loaded " .. o.checkpoint)
  else
    train.fit(model, common.loader(o, d.train, d.train_idx, true), { epochs = o.epochs, lr = o.lr, label = "base " })
  end
  if o.out then md.save(o.out .. "/base.safetensors", model:state_dict()) end
  local ev = common.evaluate(o, d, model)
  print(string.format("base model: %s width %g, %d parameters, test top-1 %.2f%% (%d test items)", o.arch, o.width,
    model:num_parameters(), 100 * ev.top1, ev.n))
  return model, ev
end

--- feature_sizes(model, d) -> {[path] = {C, H, W}} of every conv layer's
-- output for one input of the data set's size
function common.feature_sizes(model, d)
  local sizes, handles = {}, {}
  for _, p in ipairs(doctor.conv_layers(model)) do
    handles[#handles + 1] = doctor.find(model, p):register_forward_hook(function(_, _, out)
      sizes[p] = { out:size(2), out:size(3), out:size(4) }
    end)
  end
  local was = model.training
  model:eval()
  local ok, err = pcall(function()
    md.no_grad(function() model(md.zeros(1, d.info.c, d.info.h, d.info.w)) end)
  end)
  for _, h in ipairs(handles) do h.remove() end
  model:train(was)
  if not ok then error(err, 0) end
  return sizes
end

--- the deepest conv layer whose feature map is at least min_size pixels on
-- its shorter side (else the one with the largest map): where the
-- space-wise constraint and Grad-CAM still see a spatial layout
function common.spatial_layer(model, d, min_size)
  min_size = min_size or 7
  local sizes = common.feature_sizes(model, d)
  local convs = doctor.conv_layers(model)
  local best, best_side
  for _, p in ipairs(convs) do
    local side = math.min(sizes[p][2], sizes[p][3])
    if side >= min_size then best = p end
    if not best_side or side > best_side then best_side = side end
  end
  if best then return best end
  for _, p in ipairs(convs) do
    if math.min(sizes[p][2], sizes[p][3]) == best_side then best = p end
  end
  return best
end

--- layers(model, spec [, every [, d]]) -> list of module paths.  spec: "all"
-- (every conv layer), "last", "first", "spatial" (common.spatial_layer; needs
-- d), "none", or a comma list of these, module paths or conv numbers
-- ("1,3,#5": the 1st, 3rd, 5th conv layer).  every = k > 1 keeps conv 1,
-- 1+k, 1+2k, ... of "all" and always the last one.
function common.layers(model, spec, every, d)
  local convs = doctor.conv_layers(model)
  local function conv(n)
    local p = convs[n]
    if not p then error(string.format("layer #%d: the model has %d conv layers", n, #convs), 0) end
    return p
  end
  if spec == "none" or spec == "" then return {} end
  if spec == "all" then
    every = every or 1
    if every <= 1 then return convs end
    local out = {}
    for n = 1, #convs, every do out[#out + 1] = convs[n] end
    if out[#out] ~= convs[#convs] then out[#out + 1] = convs[#convs] end
    return out
  end
  local out = {}
  for p in spec:gmatch("[^,%s]+") do
    if p == "last" then out[#out + 1] = convs[#convs]
    elseif p == "first" then out[#out + 1] = convs[1]
    elseif p == "spatial" then
      if not d then error("layers: 'spatial' needs the data set", 2) end
      out[#out + 1] = common.spatial_layer(model, d)
    elseif p:match("^#?%d+$") then out[#out + 1] = conv(tonumber(p:match("%d+")))
    else doctor.find(model, p); out[#out + 1] = p end
  end
  return out
end

--- the 1-based position of a module path among the conv layers (its depth)
function common.conv_index(model, path)
  for n, p in ipairs(doctor.conv_layers(model)) do if p == path then return n end end
  return nil
end

--- sift the train subset: the T most confident per class (diagnosis) and
-- the n_low hardest per class (annotation candidates, hardest first)
function common.sift(o, d, model, n_low)
  return doctor.sift(model, d.sub, { T = o.T, n_low = n_low or o.annotated })
end

--- the first n annotation candidates of each class (items of d.sub)
function common.annotated(d, sifted, n)
  local out = {}
  for c = 0, d.K - 1 do
    local low = sifted.low[c] or {}
    for j = 1, math.min(n, #low) do out[#out + 1] = low[j] end
  end
  return out
end

--- the channel-wise masks of layers ({layer = class x kernel mask}, empty
-- for no layers): the diagnosis of the sifted confident samples (sifted.high)
-- with --form, --J, --delta, thresholded with --v or --theta
function common.channel_masks(o, d, model, sifted, layers)
  local masks = {}
  if #layers == 0 then return masks end
  local maps = doctor.diagnose(model, d.sub, sifted.high, layers,
    { form = o.form, J = o.J, delta = o.delta, classes = d.K, transform = { normalize = true } })
  for _, l in ipairs(layers) do masks[l] = doctor.channel_mask(maps[l], { form = o.form, v = o.v, theta = o.theta }) end
  return masks
end

--- the data line every recipe prints
function common.print_data(d)
  print(string.format("data: %d train, %d test, %d classes, %dx%dx%d", #d.train_idx, d.n_test, d.K, d.info.c, d.info.h,
    d.info.w))
end

--- treat(o, d, base, {ch_layers=, sp_layers=, ch_masks=, expand=, annotated=})
-- -> treated copy of base, its test evaluation, the treatment history.
-- The seed is reset first, so treatments differ only by their spec.
function common.treat(o, d, base, t)
  local model = common.copy_model(o, d, base)
  md.manual_seed(o.seed)
  local spec = { form = o.form, ch_layers = t.ch_layers or {}, sp_layers = t.sp_layers or {}, ch_masks = t.ch_masks or {},
    alpha = o.alpha, beta = o.beta, expand = t.expand or 0 }
  local ann = t.annotated or {}
  if #spec.sp_layers > 0 and #ann > 0 and not d.has_masks then
    error("the space-wise constraint needs object masks: this data set has none (an image folder needs masks/)", 0)
  end
  local history = doctor.treat(model, common.loader(o, d.train, d.train_idx, true), spec, {
    epochs = o.treat_epochs, lr = o.treat_lr,
    annotated = (#spec.sp_layers > 0 and #ann > 0) and
      { ds = d.sub, indices = ann, mask_fn = d.mask_fn, batch_size = math.min(32, #ann), seed = o.seed } or nil })
  return model, common.evaluate(o, d, model), history
end
-- }======================================================

-- {====================================================== numbers
--- cosine similarity of two lists of numbers (0 when either is all zero)
function common.cosine(a, b)
  local ab, aa, bb = 0, 0, 0
  for i = 1, #a do ab = ab + a[i] * b[i]; aa = aa + a[i] * a[i]; bb = bb + b[i] * b[i] end
  if aa == 0 or bb == 0 then return 0 end
  return ab / math.sqrt(aa * bb)
end

--- the mean, min and max of f(rows[i], rows[j]) over the pairs i < j
local function pairwise(rows, f)
  local sum, n, lo, hi = 0, 0, math.huge, -math.huge
  for i = 1, #rows do
    for j = i + 1, #rows do
      local s = f(rows[i], rows[j])
      sum, n = sum + s, n + 1
      lo, hi = math.min(lo, s), math.max(hi, s)
    end
  end
  if n == 0 then return 0 / 0, 0 / 0, 0 / 0 end
  return sum / n, lo, hi
end

--- rows: a list of lists (a class x kernel map as a table).  Returns the mean,
-- min and max cosine similarity over the pairs of distinct rows
function common.row_cosines(rows)
  return pairwise(rows, common.cosine)
end

--- the kernels (1-based) a row needs to hold half of its total, the largest
-- first -- the set doctor.sparsity counts
function common.top_set(row)
  local order, total = {}, 0
  for k, v in ipairs(row) do order[k] = k; total = total + v end
  table.sort(order, function(a, b) if row[a] ~= row[b] then return row[a] > row[b] end return a < b end)
  local set, acc = {}, 0
  for _, k in ipairs(order) do
    set[#set + 1] = k
    acc = acc + row[k]
    if acc >= total / 2 then break end
  end
  return set
end

--- Jaccard index |a & b| / |a | b| of two lists of distinct keys
function common.jaccard(a, b)
  local in_a, inter, union = {}, 0, #a
  for _, k in ipairs(a) do in_a[k] = true end
  for _, k in ipairs(b) do
    if in_a[k] then inter = inter + 1 else union = union + 1 end
  end
  return union > 0 and inter / union or 0
end

--- how much the classes' kernel sets overlap: the mean (min, max) Jaccard
-- index between the top_set of two rows (1 = the same kernels, 0 = disjoint)
function common.row_overlaps(rows)
  local sets = {}
  for i, r in ipairs(rows) do sets[i] = common.top_set(r) end
  return pairwise(sets, common.jaccard)
end

function common.mean(list)
  local s = 0
  for _, v in ipairs(list) do s = s + v end
  return #list > 0 and s / #list or 0 / 0
end

--- FGSM (Goodfellow et al.): x' = clamp(x + eps * sign(d CE / d x), 0, 1) on
-- raw images x (B,C,H,W) in [0,1]; the model sees (x - mean) / std
function common.fgsm(model, raw, labels, eps, mean, std)
  model:eval()
  local x = raw:detach():requires_grad(true)
  local logits = model((x - mean) / std)
  local g = md.grad(md.cross_entropy(logits, labels), { x })[1]
  return md.clamp(raw + md.sign(g) * eps, 0, 1):detach()
end
-- }======================================================

-- {====================================================== output
--- a markdown table: header {..}, rows {{..}, ..} (values tostring'd)
function common.md_table(header, rows)
  local function line(cells)
    local s = {}
    for i, c in ipairs(cells) do s[i] = tostring(c) end
    return "| " .. table.concat(s, " | ") .. " |"
  end
  local out = { line(header) }
  local sep = {}
  for i = 1, #header do sep[i] = "---" end
  out[2] = line(sep)
  for _, r in ipairs(rows) do out[#out + 1] = line(r) end
  return table.concat(out, "\n") .. "\n"
end

function common.pct(x) return x and x == x and string.format("%.2f", 100 * x) or "-" end
--- string.format(f, x), or "-" for nil and nan
function common.fmt(f, x) return x and x == x and string.format(f, x) or "-" end

--- results writer for OUT: j:line(obj) appends a JSON line (results.jsonl,
-- truncated when made); j:markdown(title, text) writes results.md
function common.results(o)
  local path = o.out .. "/results.jsonl"
  os.remove(path)
  return {
    path = path,
    line = function(_, obj) report.jsonl(path, obj) end,
    markdown = function(_, text)
      report.write_file(o.out .. "/results.md", text)
      return o.out .. "/results.md"
    end,
  }
end

--- a line chart as SVG with axes, ticks and a legend:
-- {title=, xlabel=, ylabel=, series={{name=, points={{x,y},..}, colour=, dash=true}},
--  xticks={{x, "label"},..} (default: the x values), ymin=, ymax=, percent=true}
-- nan / nil y values are left out.  The legend wraps, and long tick labels
-- are drawn at 45 degrees with room made for them below the axis.
function common.plot_svg(p)
  local function good(pt) return type(pt[2]) == "number" and pt[2] == pt[2] and math.abs(pt[2]) ~= math.huge end
  local esc = report.esc
  local CH = 6.2 -- about the width of a character at font-size 11
  local W, PH = p.width or 640, p.plot_height or 230
  local L, R = 64, 16
  local palette = { "#4477aa", "#ee6677", "#228833", "#ccbb44", "#66ccee", "#aa3377", "#777777" }
  local xmin, xmax, ymin, ymax = math.huge, -math.huge, math.huge, -math.huge
  for _, s in ipairs(p.series) do
    for _, pt in ipairs(s.points) do
      if good(pt) then
        xmin, xmax = math.min(xmin, pt[1]), math.max(xmax, pt[1])
        ymin, ymax = math.min(ymin, pt[2]), math.max(ymax, pt[2])
      end
    end
  end
  if xmin == math.huge then xmin, xmax, ymin, ymax = 0, 1, 0, 1 end
  ymin, ymax = p.ymin or ymin, p.ymax or ymax
  if ymax - ymin < 1e-9 then ymin, ymax = ymin - 0.5 * math.max(math.abs(ymin), 0.01), ymax + 0.5 * math.max(math.abs(ymax), 0.01) end
  if xmax == xmin then xmin, xmax = xmin - 1, xmax + 1 end
  local pad = 0.05 * (ymax - ymin)
  if not p.ymin then ymin = ymin - pad end
  if not p.ymax then ymax = ymax + pad end
  -- x ticks
  local ticks = p.xticks
  if not ticks then
    ticks = {}
    local seen = {}
    for _, s in ipairs(p.series) do
      for _, pt in ipairs(s.points) do
        if not seen[pt[1]] then seen[pt[1]] = true; ticks[#ticks + 1] = { pt[1], string.format("%g", pt[1]) } end
      end
    end
    table.sort(ticks, function(u, v) return u[1] < v[1] end)
  end
  local longest = 0
  for _, t in ipairs(ticks) do longest = math.max(longest, #t[2]) end
  local rotate = #ticks > 0 and (longest * CH + 8) * #ticks > W - L - R
  -- legend: entries laid out in rows above the plot
  local legend, lx, row = {}, L + 8, 0
  for j, s in ipairs(p.series) do
    local w = 28 + CH * #s.name
    if lx + w > W - R and lx > L + 8 then lx, row = L + 8, row + 1 end
    legend[j] = { lx, row }
    lx = lx + w
  end
  local Tm = (p.title and 30 or 10) + 14 * (row + 1)
  local B = (rotate and math.floor(longest * CH * 0.71 + 22) or 26) + (p.xlabel and 18 or 0)
  local H = Tm + PH + B
  local function X(v) return L + (v - xmin) / (xmax - xmin) * (W - L - R) end
  local function Y(v) return Tm + (ymax - v) / (ymax - ymin) * PH end
  local out = { string.format('<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="11">', W, H, W, H),
    string.format('<rect x="0" y="0" width="%d" height="%d" fill="white"/>', W, H) }
  if p.title then out[#out + 1] = string.format('<text x="%d" y="18" font-size="13" text-anchor="middle">%s</text>', W // 2, esc(p.title)) end
  for i = 0, 4 do
    local v = ymin + (ymax - ymin) * i / 4
    local lab = p.percent and string.format("%.1f%%", 100 * v) or string.format("%.3g", v)
    out[#out + 1] = string.format('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#e3e3e3"/><text x="%d" y="%.1f" text-anchor="end">%s</text>',
      L, Y(v), W - R, Y(v), L - 4, Y(v) + 4, lab)
  end
  local base_y = Tm + PH
  out[#out + 1] = string.format('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#333"/><line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#333"/>',
    L, Tm, L, base_y, L, base_y, W - R, base_y)
  for _, t in ipairs(ticks) do
    local x = X(t[1])
    out[#out + 1] = string.format('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#333"/>', x, base_y, x, base_y + 4)
    if rotate then
      out[#out + 1] = string.format('<text x="%.1f" y="%d" text-anchor="end" transform="rotate(-45 %.1f %d)">%s</text>', x, base_y + 14, x, base_y + 14, esc(t[2]))
    else
      out[#out + 1] = string.format('<text x="%.1f" y="%d" text-anchor="middle">%s</text>', x, base_y + 16, esc(t[2]))
    end
  end
  if p.xlabel then out[#out + 1] = string.format('<text x="%d" y="%d" text-anchor="middle">%s</text>', (L + W - R) // 2, H - 6, esc(p.xlabel)) end
  if p.ylabel then
    local cy = Tm + PH // 2
    out[#out + 1] = string.format('<text x="14" y="%d" text-anchor="middle" transform="rotate(-90 14 %d)">%s</text>', cy, cy, esc(p.ylabel))
  end
  for j, s in ipairs(p.series) do
    local col = s.colour or palette[(j - 1) % #palette + 1]
    local dash = s.dash and ' stroke-dasharray="6 4"' or ""
    local pts = {}
    for _, pt in ipairs(s.points) do
      if good(pt) then pts[#pts + 1] = string.format("%.1f,%.1f", X(pt[1]), Y(pt[2])) end
    end
    out[#out + 1] = string.format('<polyline fill="none" stroke="%s" stroke-width="2"%s points="%s"/>', col, dash, table.concat(pts, " "))
    if not s.dash then
      for _, pt in ipairs(s.points) do
        if good(pt) then
          out[#out + 1] = string.format('<circle cx="%.1f" cy="%.1f" r="3" fill="%s"><title>%s: %g, %.4g</title></circle>', X(pt[1]), Y(pt[2]), col, esc(s.name), pt[1], pt[2])
        end
      end
    end
    local ex, ey = legend[j][1], (p.title and 30 or 10) + 14 * legend[j][2] + 6
    out[#out + 1] = string.format('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="%s" stroke-width="2"%s/><text x="%.1f" y="%d">%s</text>',
      ex, ey - 4, ex + 18, ey - 4, col, dash, ex + 22, ey, esc(s.name))
  end
  out[#out + 1] = "</svg>"
  return table.concat(out, "\n") .. "\n"
end

--- the run's header line (stdout)
function common.banner(name, o)
  print(string.format("mdoctor %s | %s | %s | arch %s width %g | data %s | seed %d", md.version, md.blas_info(), name,
    o.arch, o.width, o.data, o.seed))
end

-- }======================================================

-- {====================================================== JSON (reading)
--- decode one JSON value (objects -> tables, arrays -> lists, null -> nil
-- in objects / common.null in arrays); errors name the position
common.null = setmetatable({}, { __tostring = function() return "null" end })
function common.json_decode(s)
  local pos = 1
  local function fail(msg) error(string.format("json: %s at position %d", msg, pos), 0) end
  local function ws() pos = s:find("[^ \t\r\n]", pos) or #s + 1 end
  local value
  local function str()
    pos = pos + 1
    local buf = {}
    while true do
      local c = s:sub(pos, pos)
      if c == "" then fail("unterminated string") end
      if c == '"' then pos = pos + 1 break end
      if c == "\\" then
        local e = s:sub(pos + 1, pos + 1)
        local map = { ['"'] = '"', ["\\"] = "\\", ["/"] = "/", b = "\b", f = "\f", n = "\n", r = "\r", t = "\t" }
        if map[e] then buf[#buf + 1] = map[e]; pos = pos + 2
        elseif e == "u" then
          local hex = s:sub(pos + 2, pos + 5)
          if not hex:match("^%x%x%x%x$") then fail("bad \\u escape") end
          buf[#buf + 1] = utf8.char(tonumber(hex, 16)); pos = pos + 6
        else fail("bad escape") end
      else buf[#buf + 1] = c; pos = pos + 1 end
    end
    return table.concat(buf)
  end
  function value()
    ws()
    local c = s:sub(pos, pos)
    if c == "{" then
      pos = pos + 1
      local t = {}
      ws()
      if s:sub(pos, pos) == "}" then pos = pos + 1 return t end
      while true do
        ws()
        if s:sub(pos, pos) ~= '"' then fail("object key expected") end
        local k = str()
        ws()
        if s:sub(pos, pos) ~= ":" then fail("':' expected") end
        pos = pos + 1
        local v = value()
        if v ~= common.null then t[k] = v end
        ws()
        local d = s:sub(pos, pos)
        pos = pos + 1
        if d == "}" then return t end
        if d ~= "," then fail("',' or '}' expected") end
      end
    elseif c == "[" then
      pos = pos + 1
      local t = {}
      ws()
      if s:sub(pos, pos) == "]" then pos = pos + 1 return t end
      while true do
        t[#t + 1] = value()
        ws()
        local d = s:sub(pos, pos)
        pos = pos + 1
        if d == "]" then return t end
        if d ~= "," then fail("',' or ']' expected") end
      end
    elseif c == '"' then return str()
    elseif s:sub(pos, pos + 3) == "true" then pos = pos + 4 return true
    elseif s:sub(pos, pos + 4) == "false" then pos = pos + 5 return false
    elseif s:sub(pos, pos + 3) == "null" then pos = pos + 4 return common.null
    else
      local num = s:match("^-?%d+%.?%d*[eE]?[-+]?%d*", pos)
      if not num or num == "" or num == "-" then fail("unexpected '" .. c .. "'") end
      pos = pos + #num
      return tonumber(num) or fail("bad number '" .. num .. "'")
    end
  end
  local v = value()
  ws()
  if pos <= #s then fail("trailing characters") end
  return v
end

--- the objects of a JSON-lines file
function common.read_jsonl(path)
  local out = {}
  for line in io.lines(path) do
    if line:match("%S") then out[#out + 1] = common.json_decode(line) end
  end
  return out
end
-- }======================================================

return common
