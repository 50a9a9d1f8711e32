-- tests/lua/test_doctor.lua -- the Model Doctor module (lua/mdoctor/doctor.lua):
--   1. doctor.losses (ce, L_ch, L_sp and the double-backward gradient of
--      their sum w.r.t. every parameter) against PyTorch in float64, both
--      forms, logit and prob scores, runner-up term on/off, mask expansion,
--      has_mask weights; md.mask_for_layer against the documented rule
--   2. doctor.correlations against PyTorch (J = 1); J copies without noise
--      equal one; J noisy copies equal the mean of the copies computed one
--      by one with the same noise (captured by a hook)
--   3. the diagnosis finds the truth: a hand-built network in which class c
--      uses only kernel c, on a PNG folder data set written here: the map
--      (hand-computed), channel_mask and sparsity, both forms
--   4. sift on the same model and data set against a hand-computed ranking
-- The PyTorch values come from tests/gen_doctor_fixtures.py.
local T = dofile("tests/lua/harness.lua")
local md = require "mdoctor"
local nn = md.nn
local doctor = require "mdoctor.doctor"
require("mdoctor.util").quiet = true -- no progress lines in the test log

local fx = md.load(T.fixture("doctor_losses.safetensors"))

-- the entries of fx under prefix, with the prefix removed
local function sub(prefix) return T.under(fx, prefix) end

local function maxabs(t) return md.max(md.abs(t)):item() end

--- a close to the reference within 1e-4 of max|ref| (the float32 vs float64 budget)
local function close_rel(a, ref, name, rel)
  local scale = math.max(maxabs(ref), 1e-30)
  return T.close(a, ref, 0, (rel or 1e-4) * scale, name)
end

-- the network of the fixture (module paths "0" .. "7", as torch's Sequential)
local function tiny_net()
  local m = nn.Sequential(nn.Conv2d(1, 4, 3, { padding = 1 }), nn.BatchNorm2d(4), nn.ReLU(),
    nn.Conv2d(4, 6, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 3))
  m:load_state_dict(sub("sd."))
  return m
end

local x, y, masks, has_mask = fx.x, fx.y, fx.masks, fx.has_mask
local irr = { ["0"] = fx["irr.0"], ["2"] = fx["irr.2"], ["3"] = fx["irr.3"] }

-- {====================================================== 1. masks for a layer
T.run("mask_for_layer", function()
  for _, e in ipairs { 0, 1, 2, 9 } do
    for _, s in ipairs { 8, 6, 5, 3 } do
      local got = md.mask_for_layer(masks, e, s, s)
      T.close(got, fx[string.format("mfl.e%d.s%d", e, s)], 0, 0,
        string.format("mask_for_layer expand %d -> %dx%d as documented (dilate, area resize, >= 0.5)", e, s, s))
    end
  end
end)
-- }======================================================

-- {====================================================== 1. losses vs PyTorch
-- the specs of tests/gen_doctor_fixtures.py (ch = ch_layers, sp = sp_layers)
local CASES = {
  { "paper_logit", { form = "paper", score = "logit", ch_layers = { "0", "3" }, sp_layers = { "3" }, expand = 0 } },
  { "paper_prob", { form = "paper", score = "prob", ch_layers = { "3" }, sp_layers = { "0", "3" }, expand = 2 } },
  { "paper_noru", { form = "paper", score = "logit", runner_up = 0, ch_layers = { "0" }, sp_layers = { "3" }, expand = 1 } },
  { "paper_ru_half", { form = "paper", score = "prob", runner_up = 0.5, ch_layers = { "2", "3" }, sp_layers = { "2" }, expand = 1 } },
  { "code_logit", { form = "code", score = "logit", ch_layers = { "0", "3" }, sp_layers = { "3" }, expand = 0 } },
  { "code_prob_ru", { form = "code", score = "prob", runner_up = 0.5, ch_layers = { "3" }, sp_layers = { "0" }, expand = 2 } },
  { "code_ch_only", { form = "code", score = "logit", ch_layers = { "0", "2" }, sp_layers = {} } },
  { "sp_has_mask", { form = "paper", score = "logit", ch_layers = {}, sp_layers = { "3", "0" }, expand = 1 }, true },
  { "sp_big_expand", { form = "paper", score = "logit", ch_layers = {}, sp_layers = { "3" }, expand = 9 } },
}

for _, case in ipairs(CASES) do
  local name, spec, use_has = case[1], case[2], case[3]
  T.run("losses " .. name, function()
    spec.ch_masks = irr
    local model = tiny_net()
    model:train() -- BatchNorm on batch statistics, as the fixture
    local logits, ce, lch, lsp = doctor.losses(model, x, y, masks, spec, use_has and has_mask or nil)
    local pre = "case." .. name .. "."
    close_rel(logits, fx[pre .. "logits"], name .. ": logits")
    close_rel(ce, fx[pre .. "ce"], name .. ": ce")
    if fx[pre .. "lch"] then
      T.check(lch ~= nil, name .. ": l_ch given")
      if lch then close_rel(lch, fx[pre .. "lch"], name .. ": l_ch vs torch") end
    else
      T.check(lch == nil, name .. ": no l_ch without ch_layers")
    end
    if fx[pre .. "lsp"] then
      T.check(lsp ~= nil, name .. ": l_sp given")
      if lsp then
        -- an all-foreground mask (expand 9 on 8x8) gives exactly 0
        local ref = fx[pre .. "lsp"]
        if ref:item() == 0 then T.close(lsp, 0, 0, 0, name .. ": l_sp = 0 (no background left)")
        else close_rel(lsp, ref, name .. ": l_sp vs torch") end
      end
    else
      T.check(lsp == nil, name .. ": no l_sp without sp_layers")
    end
    local total = ce
    if lch then total = total + lch end
    if lsp then total = total + lsp end
    local named = model:named_parameters()
    local params = {}
    for i, e in ipairs(named) do params[i] = e[2] end
    local grads = md.grad(total, params)
    local scale = 0
    for _, e in ipairs(named) do scale = math.max(scale, maxabs(fx[pre .. "grad." .. e[1]])) end
    for i, e in ipairs(named) do
      local ref = fx[pre .. "grad." .. e[1]]
      if maxabs(ref) < 1e-12 * scale then
        -- the bias of the conv before a train-mode BatchNorm: exactly 0 in
        -- exact arithmetic (the batch mean removes it); float32 leaves dust
        T.close(grads[i], ref, 0, 1e-6 * scale, name .. ": d(ce+l_ch+l_sp)/d " .. e[1] .. " = 0 (before BatchNorm)")
      else
        close_rel(grads[i], ref, name .. ": d(ce+l_ch+l_sp)/d " .. e[1])
      end
    end
  end)
end

T.run("losses: edge cases", function()
  local model = tiny_net()
  model:train()
  local logits, ce, lch, lsp = doctor.losses(model, x, y, masks, { form = "paper", ch_layers = {}, sp_layers = {} })
  T.check(lch == nil and lsp == nil, "no layers: only ce")
  close_rel(ce, fx["case.paper_logit.ce"], "no layers: ce")
  close_rel(logits, fx["case.paper_logit.logits"], "no layers: logits")
  -- sp layers but no masks: no L_sp (the training batches of treat)
  _, _, lch, lsp = doctor.losses(model, x, y, nil, { form = "paper", ch_layers = { "3" }, sp_layers = { "3" },
    ch_masks = irr, score = "logit", expand = 0 })
  T.check(lsp == nil, "sp layers without masks: no l_sp")
  T.check(lch ~= nil, "sp layers without masks: l_ch still there")
  T.err(function()
    doctor.losses(model, x, y, nil, { form = "paper", ch_layers = { "3" }, ch_masks = {} })
  end, "no channel mask for layer '3'", "a ch layer without a channel mask is an error naming it")
  T.err(function()
    doctor.losses(model, x, y, nil, { form = "paper", ch_layers = { "9" }, ch_masks = irr })
  end, "no module '9'", "an unknown layer path is an error naming it")
  -- all-zero channel masks and no runner-up: L_ch is exactly 0
  local zero = { ["3"] = md.zeros(3, 6) }
  _, _, lch = doctor.losses(model, x, y, nil, { form = "paper", ch_layers = { "3" }, ch_masks = zero, runner_up = 0 })
  T.close(lch, 0, 0, 0, "no irrelevant kernel, no runner-up: l_ch = 0")
  -- hooks are removed: the model runs as before afterwards
  local before = #doctor.find(model, "3")._hooks
  T.check(before == 0, "losses leaves no hook behind")
end)
-- }======================================================

-- {====================================================== 2. correlations
T.run("correlations vs torch (J = 1)", function()
  local model = tiny_net()
  for _, layer in ipairs { "0", "2", "3" } do
    for _, form in ipairs { "paper", "code" } do
      for _, score in ipairs { "logit", "prob" } do
        local a = doctor.correlations(model, x, y, layer, { form = form, J = 1, delta = 0, score = score })
        close_rel(a, fx[string.format("corr.%s.%s.%s", layer, form, score)],
          string.format("correlations layer %s %s %s vs torch", layer, form, score))
      end
    end
  end
  -- correlations puts the model in eval mode (running statistics)
  T.check(not model.training, "correlations runs the model in eval mode")
  close_rel(md.no_grad(function() return model(x) end), fx.eval_logits, "eval logits vs torch")
end)

T.run("correlations: J copies", function()
  local model = tiny_net()
  for _, layer in ipairs { "0", "3" } do
    for _, score in ipairs { "logit", "prob" } do
      local one = doctor.correlations(model, x, y, layer, { form = "paper", J = 1, delta = 0, score = score })
      local three = doctor.correlations(model, x, y, layer, { form = "paper", J = 3, delta = 0, score = score })
      close_rel(three, one, string.format("layer %s %s: J=3 without noise equals J=1", layer, score), 1e-5)
    end
  end
  -- code form: no noise whatever J and delta
  local c1 = doctor.correlations(model, x, y, "0", { form = "code", J = 1, delta = 0 })
  local c5 = doctor.correlations(model, x, y, "0", { form = "code", J = 5, delta = 0.5 })
  close_rel(c5, c1, "code form ignores J and delta (no noise)", 1e-6)

  -- J noisy copies = the mean over copies, each computed alone with its noise
  local B = x:size(1)
  for _, case in ipairs { { "0", "1", 4, 0.3, "logit" }, { "3", "4", 3, 0.05, "prob" } } do
    local layer, next_mod, J, delta, score = table.unpack(case)
    -- the clean layer output
    local clean
    local h = doctor.find(model, layer):register_forward_hook(function(_, _, out) clean = out:detach() end)
    model:eval()
    md.no_grad(function() model(x) end)
    h.remove()
    -- the noisy input of the next module, as correlations fed it
    local seen
    h = doctor.find(model, next_mod):register_forward_hook(function(_, inp) seen = inp:detach() end)
    local a = doctor.correlations(model, x, y, layer, { form = "paper", J = J, delta = delta, score = score })
    h.remove()
    local tag = string.format("layer %s J=%d delta %g %s", layer, J, delta, score)
    T.check(seen and seen:size(1) == J * B, tag .. ": the J copies go through as one batch of J*B")
    local sum
    local maxnoise, spread, mean, lo, hi = 0, 0, 0, 0, 0
    local noises = {}
    for j = 1, J do
      local noise = seen:narrow(1, (j - 1) * B + 1, B) - clean
      noises[j] = noise
      maxnoise = math.max(maxnoise, maxabs(noise))
      spread = spread + md.mean(md.square(noise)):item()
      mean = mean + md.mean(noise):item() / J
      lo = math.min(lo, -md.max(md.neg(noise)):item())
      hi = math.max(hi, md.max(noise):item())
      local m
      local hh = doctor.find(model, layer):register_forward_hook(function()
        m = (clean + noise):detach():requires_grad(true)
        return m
      end)
      local logits = model(x)
      hh.remove()
      local s = logits
      if score == "prob" then s = md.softmax(logits, 2) end
      local g = md.grad(md.gather(s, 2, y:reshape(B, 1)):sum(), { m })[1]
      local aj = md.abs(g):sum({ 3, 4 })
      sum = sum and (sum + aj) or aj
    end
    T.check(maxnoise <= delta * (1 + 1e-5), string.format("%s: noise within [-delta, delta] (max %.4g)", tag, maxnoise))
    -- U[-d, d] has variance d^2/3: the noise is really there
    local var = spread / J
    T.check(var > delta ^ 2 / 3 * 0.5 and var < delta ^ 2 / 3 * 1.5,
      string.format("%s: noise variance %.3g ~ delta^2/3 = %.3g", tag, var, delta ^ 2 / 3))
    T.check(math.abs(mean) < delta * 0.05 and lo < -0.9 * delta and hi > 0.9 * delta,
      string.format("%s: noise centred (mean %.3g), spans [%.3g, %.3g]", tag, mean, lo, hi))
    T.check(maxabs(noises[1] - noises[2]) > delta / 10, tag .. ": each copy has its own noise")
    close_rel(a, sum / J, tag .. ": equals the mean of the copies computed one by one", 1e-5)
    -- and the noise changed something (else the check above proves little)
    local a0 = doctor.correlations(model, x, y, layer, { form = "paper", J = 1, delta = 0, score = score })
    T.check(maxabs(a - a0) > 1e-4 * maxabs(a0), tag .. ": differs from the noiseless correlations")
  end
end)
-- }======================================================

-- {====================================================== 3, 4. a network whose truth is known
-- Images 8x8 of lines: class 0 horizontal, 1 vertical, 2 diagonal; some carry
-- an anti-diagonal "clutter" stroke.  Conv2d(1, 4, 3) has one zero-sum kernel
-- per stroke direction (h, v, d, anti-diagonal a) and bias -2.5: a kernel is
-- positive only where 2 or 3 pixels of its own stroke lie on its line (the
-- pre-activations are half-integers, never near 0).  ReLU, global average
-- pool, Linear(4, 3) = S * [I | 0]: logit c depends on kernel c alone, and
-- kernel a (active on the clutter) on no class.  So the diagnosis at layer
-- "0" must be A[c][k] = 0 for k ~= c, A[c][c] = S/36 * mean over the sifted
-- items of class c of the number of positive pixels of map c.
local S = 6
local KERNELS = {
  { { -1, -1, -1 }, { 2, 2, 2 }, { -1, -1, -1 } }, -- h
  { { -1, 2, -1 }, { -1, 2, -1 }, { -1, 2, -1 } }, -- v
  { { 2, -1, -1 }, { -1, 2, -1 }, { -1, -1, 2 } }, -- d
  { { -1, -1, 2 }, { -1, 2, -1 }, { 2, -1, -1 } }, -- a (clutter, unused)
}
local BIAS = -2.5

local function truth_net()
  local m = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))
  local w = {}
  for k = 1, 4 do w[k] = { KERNELS[k] } end
  local lw = {}
  for c = 1, 3 do
    lw[c] = {}
    for k = 1, 4 do lw[c][k] = (c == k) and S or 0 end
  end
  m:load_state_dict({ ["0.weight"] = md.tensor(w), ["0.bias"] = md.full({ 4 }, BIAS),
    ["4.weight"] = md.tensor(lw), ["4.bias"] = md.zeros(3) })
  return m
end

-- strokes: lists of {row, col} (0-based)
local function hline(r, c0, c1) local p = {} for c = c0, c1 do p[#p + 1] = { r, c } end return p end
local function vline(c, r0, r1) local p = {} for r = r0, r1 do p[#p + 1] = { r, c } end return p end
local function dline(r0, c0, n) local p = {} for t = 0, n - 1 do p[#p + 1] = { r0 + t, c0 + t } end return p end
local function aline(r0, c0, n) local p = {} for t = 0, n - 1 do p[#p + 1] = { r0 + t, c0 - t } end return p end
local function join(...)
  local out = {}
  for _, l in ipairs { ... } do for _, p in ipairs(l) do out[#out + 1] = p end end
  return out
end
local ITEMS = { -- per class folder: the strokes of each image
  { hline(3, 0, 7), hline(5, 1, 6), hline(1, 2, 5), hline(6, 3, 4), join(hline(2, 1, 7), aline(4, 7, 4)),
    vline(4, 0, 7) },                            -- the last: a vertical stroke labelled 0 (wrong, confident)
  { vline(2, 0, 7), vline(5, 1, 7), join(vline(6, 2, 5), aline(0, 3, 4)), vline(1, 3, 5),
    {} },                                        -- the last: blank (1/3 each, predicted 0)
  { dline(0, 0, 8), dline(1, 0, 7), dline(0, 2, 6), dline(2, 3, 4), join(dline(4, 1, 3), aline(0, 7, 3)),
    join(hline(6, 0, 5), dline(1, 2, 2)) },      -- the last: mostly horizontal, labelled 2
}
local CLASS_DIRS = { "0-h", "1-v", "2-d" }

local function write_set(root)
  for c, list in ipairs(ITEMS) do
    os.execute("mkdir -p '" .. root .. "/" .. CLASS_DIRS[c] .. "'")
    for j, strokes in ipairs(list) do
      local img = {}
      for r = 1, 8 do img[r] = {} for q = 1, 8 do img[r][q] = 0 end end
      for _, p in ipairs(strokes) do img[p[1] + 1][p[2] + 1] = 1 end
      md.png_write(string.format("%s/%s/%02d.png", root, CLASS_DIRS[c], j), md.tensor({ img }))
    end
  end
end

-- the plain-Lua forward of truth_net: pre-activations, logits, probabilities
local function reference(image)
  local im = image:totable()[1]
  local pos, sums, minabs = {}, {}, math.huge
  for k = 1, 4 do
    pos[k], sums[k] = 0, 0
    for i = 1, 6 do
      for j = 1, 6 do
        local v = BIAS
        for a = 1, 3 do for b = 1, 3 do v = v + KERNELS[k][a][b] * im[i + a - 1][j + b - 1] end end
        minabs = math.min(minabs, math.abs(v))
        if v > 0 then pos[k], sums[k] = pos[k] + 1, sums[k] + v end
      end
    end
  end
  local logits, z = {}, 0
  for c = 1, 3 do logits[c] = S * sums[c] / 36; z = z + math.exp(logits[c]) end
  local probs = {}
  for c = 1, 3 do probs[c] = math.exp(logits[c]) / z end
  return { pos = pos, logits = logits, probs = probs, minabs = minabs }
end

local same_list = T.same_list
local function list_str(l) return "{" .. table.concat(l, ", ") .. "}" end

-- the expected sift: per class, correct items by p(label) descending (first
-- T), and the hard ones by 1 - p (correct) or p(pred) (wrong), first n_low
local function expected_sift(refs, labels, T_, nlow)
  local high, low, distinct = {}, {}, true
  for c = 0, 2 do
    local correct, hard = {}, {}
    for i, r in ipairs(refs) do
      if labels[i] == c then
        local pred, best = 0, -1
        for j = 1, 3 do if r.probs[j] > best then best, pred = r.probs[j], j - 1 end end
        if pred == c then correct[#correct + 1] = { i = i, s = r.probs[c + 1] } end
        hard[#hard + 1] = { i = i, s = pred == c and (1 - r.probs[c + 1]) or best }
      end
    end
    for _, l in ipairs { correct, hard } do
      table.sort(l, function(a, b) return a.s > b.s end)
      for j = 2, #l do if math.abs(l[j].s - l[j - 1].s) < 1e-4 then distinct = false end end
    end
    high[c], low[c] = {}, {}
    for j = 1, math.min(T_, #correct) do high[c][j] = correct[j].i end
    for j = 1, math.min(nlow, #hard) do low[c][j] = hard[j].i end
  end
  return high, low, distinct
end

T.run("diagnosis of a network whose truth is known; sift", function()
  local root = T.tmpdir() .. "/shapes"
  write_set(root)
  local ds = md.data.image_folder { root = root }
  local info = ds:info()
  T.check(#ds == 17 and info.classes == 3 and info.c == 1 and info.h == 8, "the PNG folder: 17 items, 3 classes, 1x8x8")
  local model = truth_net()
  model:eval()
  local refs, labels = {}, {}
  local images = {}
  local minabs = math.huge
  for i = 1, #ds do
    local img, lab = ds:get(i)
    images[i], labels[i] = img, lab
    refs[i] = reference(img)
    minabs = math.min(minabs, refs[i].minabs)
  end
  T.check(minabs >= 0.5, "reference: no pre-activation near 0 (noise up to 0.5 flips nothing)")
  local logits = md.no_grad(function() return model(md.cat(images, 1):reshape(#ds, 1, 8, 8)) end)
  local reflogits = {}
  for i, r in ipairs(refs) do reflogits[i] = r.logits end
  T.close(logits, reflogits, 1e-5, 1e-5, "truth net logits = the plain-Lua reference")
  local clutter_active = false
  for _, r in ipairs(refs) do if r.pos[4] > 0 then clutter_active = true end end
  T.check(clutter_active, "the unused kernel (clutter) is active on some images")

  -- 4. sift
  local T_, NLOW = 3, 2
  local xhigh, xlow, distinct = expected_sift(refs, labels, T_, NLOW)
  T.check(distinct, "reference: no ties in the rankings")
  local sifted = doctor.sift(model, ds, { T = T_, n_low = NLOW, batch_size = 4, transform = { normalize = false } })
  T.check(sifted.n == #ds, "sift saw every item")
  for c = 0, 2 do
    T.check(same_list(sifted.high[c] or {}, xhigh[c]),
      string.format("sift high[%d] = %s (expected %s): the T most confident correct, sorted", c,
        list_str(sifted.high[c] or {}), list_str(xhigh[c])))
    T.check(same_list(sifted.low[c] or {}, xlow[c]),
      string.format("sift low[%d] = %s (expected %s): wrong with high p(pred) or correct with low p", c,
        list_str(sifted.low[c] or {}), list_str(xlow[c])))
  end
  -- the wrong items rank first among the hard ones of their class
  local wrong0 = nil
  for i, r in ipairs(refs) do if labels[i] == 0 and r.probs[2] > 0.5 then wrong0 = i end end
  T.check(wrong0 and sifted.low[0][1] == wrong0, "the confidently wrong item of class 0 is the hardest")
  for c = 0, 2 do
    for _, i in ipairs(sifted.high[c]) do
      T.check(labels[i] == c, string.format("high[%d]: item %d has label %d", c, i, labels[i]))
    end
  end
  -- T past the number of correct items: all of them
  local all = doctor.sift(model, ds, { T = 100, n_low = 100, transform = { normalize = false } })
  local xall, xlowall = expected_sift(refs, labels, 100, 100)
  for c = 0, 2 do
    T.check(same_list(all.high[c], xall[c]), string.format("T=100: high[%d] = every correct item, sorted", c))
    T.check(same_list(all.low[c], xlowall[c]), string.format("n_low=100: low[%d] = every item, hardest first", c))
  end
  -- on a subset: item numbers of the subset
  local order = {}
  for i = #ds, 1, -1 do order[#order + 1] = i end
  local subds = md.data.subset(ds, order)
  local ss = doctor.sift(model, subds, { T = T_, n_low = NLOW, transform = { normalize = false } })
  for c = 0, 2 do
    local back = {}
    for j, i in ipairs(ss.high[c]) do back[j] = order[i] end
    T.check(same_list(back, xhigh[c]), string.format("sift on a subset: high[%d] in the subset's numbering", c))
  end

  -- 3. diagnose: the map is the truth
  local xmap = {}
  for c = 0, 2 do
    xmap[c + 1] = { 0, 0, 0, 0 }
    local sum = 0
    for _, i in ipairs(xhigh[c]) do sum = sum + S / 36 * refs[i].pos[c + 1] end
    xmap[c + 1][c + 1] = sum / #xhigh[c]
  end
  local used_clutter = false
  for c = 0, 2 do for _, i in ipairs(xhigh[c]) do if refs[i].pos[4] > 0 then used_clutter = true end end end
  T.check(used_clutter, "the clutter kernel is active on some sifted items (activation is not correlation)")
  for _, o in ipairs {
    { form = "paper", J = 4, delta = 0.1 }, { form = "paper", J = 1, delta = 0 }, { form = "paper", J = 3, delta = 0.45, batch_size = 2 },
    { form = "code" }, { form = "paper", J = 2, delta = 0.2, score = "prob" },
  } do
    local tag = string.format("diagnose %s J=%s delta=%s%s%s", o.form, tostring(o.J), tostring(o.delta),
      o.batch_size and (" batch " .. o.batch_size) or "", o.score and (" " .. o.score) or "")
    o.classes, o.transform = 3, { normalize = false }
    local maps = doctor.diagnose(model, ds, sifted.high, { "0" }, o)
    local map = maps["0"]
    T.check(map and tostring(map:shape()) == "md.Size{3, 4}", tag .. ": map (classes, kernels)")
    if o.score ~= "prob" then
      T.close(map, xmap, 1e-5, 0, tag .. ": A[c][c] as computed by hand, off-diagonal exactly 0")
    else
      -- probabilities: d p_c / d m_k = p_c (1[c=k] - p_k) S/36 relu'(m_k):
      -- other kernels matter through the softmax, the unused one never
      local t = map:totable()
      local diag_dom = true
      for c = 1, 3 do
        for k = 1, 3 do if k ~= c and t[c][k] >= t[c][c] then diag_dom = false end end
        if t[c][4] ~= 0 then diag_dom = false end
      end
      T.check(diag_dom, tag .. ": diagonal-dominant, unused kernel exactly 0")
    end
    local irr = doctor.channel_mask(map, { form = o.form, v = 0.1, theta = 0.2 })
    local xirr = {}
    for c = 1, 3 do
      xirr[c] = {}
      for k = 1, 4 do xirr[c][k] = (c == k) and 0 or 1 end
    end
    T.close(irr, xirr, 0, 0, tag .. ": channel_mask marks exactly the other kernels irrelevant")
    if o.score ~= "prob" then
      T.close(doctor.sparsity(map), { 0.25, 0.25, 0.25 }, 1e-6, 0, tag .. ": sparsity 1/4 (one kernel per class)")
    end
  end
  -- the model is unchanged by the diagnosis
  local after = md.no_grad(function() return model(md.cat(images, 1):reshape(#ds, 1, 8, 8)) end)
  T.close(after, logits, 0, 0, "diagnose leaves the model as it was")
end)

T.run("channel_mask and sparsity on hand maps", function()
  local map = md.tensor { { 10, 0.99, 1.01, 5 }, { 0, 0, 3, 3 }, { 2, 3, 12, 4.5 } }
  -- paper: A / max_k A < v
  T.close(doctor.channel_mask(map, { form = "paper", v = 0.1 }), { { 0, 1, 0, 0 }, { 1, 1, 0, 0 }, { 0, 0, 0, 0 } }, 0, 0,
    "paper: irrelevant where A < v * max (v = 0.1)")
  T.close(doctor.channel_mask(map, { form = "paper", v = 0.5 }), { { 0, 1, 1, 0 }, { 1, 1, 0, 0 }, { 1, 1, 0, 1 } }, 0, 0,
    "paper: v = 0.5")
  T.close(doctor.channel_mask(map, { form = "paper" }), { { 0, 1, 0, 0 }, { 1, 1, 0, 0 }, { 0, 0, 0, 0 } }, 0, 0,
    "paper: v defaults to 0.1")
  -- code: min-max normalised < theta; row 3: {0, .1, 1, .25}; row 1: {1, 0, ~.0022, .4421}
  T.close(doctor.channel_mask(map, { form = "code", theta = 0.2 }), { { 0, 1, 1, 0 }, { 1, 1, 0, 0 }, { 1, 1, 0, 0 } }, 0, 0,
    "code: min-max normalised < theta (0.2)")
  T.close(doctor.channel_mask(map, { form = "code", theta = 0.3 }), { { 0, 1, 1, 0 }, { 1, 1, 0, 0 }, { 1, 1, 0, 1 } }, 0, 0,
    "code: theta = 0.3")
  -- sparsity: the share of kernels holding half of the total
  local sp = doctor.sparsity(md.tensor { { 4, 3, 2, 1 }, { 1, 1, 1, 1 }, { 0, 0, 9, 0 }, { 1, 2, 3, 10 } })
  T.close(sp, { 0.5, 0.5, 0.25, 0.25 }, 1e-12, 0, "sparsity of hand maps")
end)
-- }======================================================

T.cleanup()
T.summary()
