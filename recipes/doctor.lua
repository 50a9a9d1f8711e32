--- recipes/doctor.lua -- the Model Doctor pipeline:
--   train a base model (or load one) -> sift -> diagnose -> treat -> evaluate -> report
--
--   build/mdoctor recipes/doctor.lua [--option value ...]     (--help lists them)
--
-- Every knob of the method is an option: the layer sets S_ch and S_sp, delta,
-- J, v or theta, T, alpha/beta, the mask expansion, the number of annotated
-- samples, and the form ("paper" or "code", see lua/mdoctor/doctor.lua).
local md = require "mdoctor"
local doctor = require "mdoctor.doctor"
local train = require "mdoctor.train"
local report = require "mdoctor.report"

-- {====================================================== options
-- the option parser and the Model Doctor knobs are the recipes' shared ones
-- (recipes/common.lua): --name value or --name=value, numbers and booleans
-- converted, --help lists DEFAULTS, an unknown option is an error after the
-- usage.  This pipeline keeps the paper's T and J and trains on all data.
local common = require "common"

local DEFAULTS = common.options({
  { "arch", "vgg", "vgg | resnet | mobilenetv2 | lenet" },
  { "width", 0.25, "channel width multiplier of the architecture" },
  { "data", "fashion_mnist", "fashion_mnist | cluttered | <image folder root>" },
  { "data_root", "", "where the data set lives (default: its standard place)" },
  { "train_subset", 0, "use only the first N training items (0 = all)" },
  { "val", 0, "hold out N training items as a validation split (reported, for tuning)" },
  { "epochs", 2, "epochs to train the base model" },
  { "lr", 0.05, "base training learning rate (SGD, momentum 0.9, cosine)" },
  { "batch", 128, "batch size" },
  { "checkpoint", "", "load this base model instead of training one" },
  { "ch_layers", "last", "S_ch: comma list of module paths, 'last' (last conv), 'none'" },
  { "sp_layers", "last", "S_sp: comma list of module paths, 'last', 'none'" },
}, common.DOCTOR, {
  { "T", 100, "most confident samples per class used for the diagnosis" },
  { "J", 10, "noise draws per sample (paper form)" },
  { "control", true, "also fine-tune with CE alone (same settings): the treatment's fair baseline" },
  { "seed", 0, "random seed" },
  { "threads", 0, "threads (0 = all cores)" },
  { "out", "out/doctor", "run directory" },
  { "explain", 8, "misclassified test samples to explain in the report" },
  { "quiet", false, "no progress lines" },
})
-- }======================================================

-- {====================================================== data
local function open_data(o)
  local data = md.data
  local train_ds, test_ds, mask_fn
  if o.data == "fashion_mnist" then
    local root = o.data_root ~= "" and o.data_root or nil
    train_ds = data.fashion_mnist { split = "train", root = root }
    test_ds = data.fashion_mnist { split = "test", root = root }
    -- Fashion-MNIST items sit on a black background: the object mask is the
    -- set of non-zero pixels, exact, so "annotation" costs nothing here
    mask_fn = function(raw) return md.gt(raw, 0.02) end
  else
    local root = o.data == "cluttered" and (o.data_root ~= "" and o.data_root or "out/cluttered") or o.data
    local f = io.open(root .. "/train", "r")
    if not f then
      error("doctor: no data set at " .. root .. "/train" ..
        (o.data == "cluttered" and " (make it with: build/mdoctor datasets/gen_cluttered.lua --out " .. root .. ")" or ""), 0)
    end
    f:close()
    local has_masks = io.open(root .. "/masks/train", "r")
    if has_masks then has_masks:close() end
    train_ds = data.image_folder { root = root .. "/train", masks = has_masks and (root .. "/masks/train") or nil }
    test_ds = data.image_folder { root = root .. "/test", masks = has_masks and (root .. "/masks/test") or nil }
  end
  return train_ds, test_ds, mask_fn
end

local function range(a, b)
  local t = {}
  for i = a, b do t[#t + 1] = i end
  return t
end
-- }======================================================

local function resolve_layers(spec, model)
  if spec == "none" or spec == "" then return {} end
  local convs = doctor.conv_layers(model)
  if spec == "last" then return { convs[#convs] } end
  local out = {}
  for p in spec:gmatch("[^,]+") do
    if p == "last" then out[#out + 1] = convs[#convs]
    else doctor.find(model, p); out[#out + 1] = p end
  end
  return out
end

local function main(args)
  local o = common.parse("doctor", DEFAULTS, args)
  if o.threads > 0 then md.set_num_threads(o.threads) end
  if o.quiet then require("mdoctor.util").quiet = true end
  md.manual_seed(o.seed)
  os.execute("mkdir -p '" .. o.out .. "/img'")
  local metrics = o.out .. "/metrics.jsonl"
  os.remove(metrics)
  local t_start = md.now()
  print(string.format("mdoctor %s | %s | arch %s width %g | data %s | form %s", md.version, md.blas_info(),
    o.arch, o.width, o.data, o.form))

  local train_all, test_ds, mask_fn = open_data(o)
  local info = train_all:info()
  local K = info.classes
  local names = info.class_names or {}
  local ntrain = o.train_subset > 0 and math.min(o.train_subset, #train_all) or #train_all
  local train_idx = range(o.val + 1, ntrain)
  local val_idx = o.val > 0 and range(1, o.val) or nil
  print(string.format("data: %d train%s, %d test, %d classes, %dx%dx%d", #train_idx,
    val_idx and string.format(" (+%d validation)", #val_idx) or "", #test_ds, K, info.c, info.h, info.w))

  local norm = { normalize = true }
  local function loader(ds, idx, shuffle, bs)
    return md.loader(ds, { batch_size = bs or o.batch, shuffle = shuffle, seed = o.seed, indices = idx,
      transform = norm, drop_last = shuffle })
  end

  -- model
  local arch = require("arch." .. o.arch)
  local model = arch { in_channels = info.c, num_classes = K, input_size = info.h, width = o.width }
  print(string.format("model: %s, %d parameters", o.arch, model:num_parameters()))
  local ch_layers, sp_layers = resolve_layers(o.ch_layers, model), resolve_layers(o.sp_layers, model)
  if o.expand < 0 then o.expand = math.floor(30 * info.h / 224 + 0.5) end

  -- 1. base model
  if o.checkpoint ~= "" then
    model:load_state_dict(md.load(o.checkpoint))
    print("loaded " .. o.checkpoint)
  else
    train.fit(model, loader(train_all, train_idx, true), { epochs = o.epochs, lr = o.lr, label = "base ",
      on_epoch = function(e, s) report.jsonl(metrics, { phase = "base", epoch = e, loss = s.loss, acc = s.acc, lr = s.lr }) end })
  end
  md.save(o.out .. "/base.safetensors", model:state_dict())
  local test_loader = loader(test_ds, nil, false, 256)
  local before = train.evaluate(model, test_loader, K)
  local val_before = val_idx and train.evaluate(model, loader(train_all, val_idx, false, 256), K)
  print(string.format("base:    test top-1 %.2f%%  top-5 %.2f%%%s", 100 * before.top1, 100 * before.top5,
    val_before and string.format("  (validation %.2f%%)", 100 * val_before.top1) or ""))
  report.jsonl(metrics, { phase = "base_eval", test_top1 = before.top1, test_top5 = before.top5,
    val_top1 = val_before and val_before.top1 })

  -- 2. sift
  local sub = md.data.subset(train_all, train_idx)
  local sifted = doctor.sift(model, sub, { T = o.T, n_low = o.annotated })

  -- 3. diagnose every conv layer we constrain, and the last conv for the report
  local diag_layers, seen = {}, {}
  for _, l in ipairs(ch_layers) do if not seen[l] then seen[l] = 1; diag_layers[#diag_layers + 1] = l end end
  for _, l in ipairs(sp_layers) do if not seen[l] then seen[l] = 1; diag_layers[#diag_layers + 1] = l end end
  if #diag_layers == 0 then diag_layers = resolve_layers("last", model) end
  local dopts = { form = o.form, J = o.J, delta = o.delta, classes = K, transform = norm }
  local maps = doctor.diagnose(model, sub, sifted.high, diag_layers, dopts)
  local masks_by_layer, save = {}, {}
  for _, l in ipairs(diag_layers) do
    masks_by_layer[l] = doctor.channel_mask(maps[l], { form = o.form, v = o.v, theta = o.theta })
    save["map." .. l], save["irrelevant." .. l] = maps[l], masks_by_layer[l]
  end
  md.save(o.out .. "/diagnosis.safetensors", save)

  -- 4. treat: channel loss on the training set, space loss on the annotated
  -- low-confidence samples (their masks)
  local annotated = {}
  for c = 0, K - 1 do for _, i in ipairs(sifted.low[c] or {}) do annotated[#annotated + 1] = i end end
  local spec = { form = o.form, ch_layers = ch_layers, sp_layers = sp_layers, ch_masks = masks_by_layer,
    alpha = o.alpha, beta = o.beta, expand = o.expand }
  local treated = arch { in_channels = info.c, num_classes = K, input_size = info.h, width = o.width }
  treated:load_state_dict(model:state_dict())
  local history = doctor.treat(treated, loader(train_all, train_idx, true), spec, {
    epochs = o.treat_epochs, lr = o.treat_lr,
    annotated = #sp_layers > 0 and { ds = sub, indices = annotated, mask_fn = mask_fn, batch_size = math.min(32, #annotated) } or nil,
    on_epoch = function(e, s)
      report.jsonl(metrics, { phase = "treat", epoch = e, loss = s.loss, acc = s.acc, ce = s.ce, ch = s.ch, sp = s.sp })
    end })
  md.save(o.out .. "/treated.safetensors", treated:state_dict())

  -- 5. evaluate; the control separates the constraints' effect from that of
  -- simply training longer
  local after = train.evaluate(treated, test_loader, K)
  local val_after = val_idx and train.evaluate(treated, loader(train_all, val_idx, false, 256), K)
  report.jsonl(metrics, { phase = "treated_eval", test_top1 = after.top1, test_top5 = after.top5,
    val_top1 = val_after and val_after.top1 })
  local control
  if o.control then
    local cm = arch { in_channels = info.c, num_classes = K, input_size = info.h, width = o.width }
    cm:load_state_dict(model:state_dict())
    md.manual_seed(o.seed + 1)
    doctor.treat(cm, loader(train_all, train_idx, true), { form = o.form, ch_layers = {}, sp_layers = {} },
      { epochs = o.treat_epochs, lr = o.treat_lr })
    control = train.evaluate(cm, test_loader, K)
    local val_control = val_idx and train.evaluate(cm, loader(train_all, val_idx, false, 256), K)
    report.jsonl(metrics, { phase = "control_eval", test_top1 = control.top1, test_top5 = control.top5,
      val_top1 = val_control and val_control.top1 })
  end
  local maps_after = doctor.diagnose(treated, sub, sifted.high, diag_layers, dopts)

  -- 6. report
  local path = report.pipeline(o, {
    before = before, after = after, val_before = val_before, val_after = val_after, maps = maps,
    maps_after = maps_after, masks = masks_by_layer, layers = diag_layers, names = names, K = K,
    model = model, treated = treated, test_ds = test_ds, train_ds = sub, history = history,
    sifted = sifted, norm_info = info, ch_layers = ch_layers, sp_layers = sp_layers, annotated = annotated,
    mask_fn = mask_fn, control = control, seconds = md.now() - t_start })
  print(string.format("treated: test top-1 %.2f%%  top-5 %.2f%%  (base %.2f%%, %+.2f points)%s", 100 * after.top1,
    100 * after.top5, 100 * before.top1, 100 * (after.top1 - before.top1),
    val_after and string.format("  (validation %.2f%%)", 100 * val_after.top1) or ""))
  if control then
    print(string.format("control: test top-1 %.2f%%  (CE-only fine-tuning with the same settings)", 100 * control.top1))
  end
  print("report: " .. path)
  print(string.format("done in %s", require("mdoctor.util").hms(md.now() - t_start)))
end

main(arg or {})
