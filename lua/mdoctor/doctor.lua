--- mdoctor.doctor: the Model Doctor method (Feng et al., AAAI 2022).
--
--   sift      the T most confident correct training samples per class, and
--             the hard ones (correct with low confidence, wrong with high) to
--             annotate with masks
--   diagnose  per layer, the class x kernel map of mean gradient correlation
--             a_k = sum_pixels |d y / d (m_k + sigma_j)|, averaged over J noise
--             draws sigma ~ U[-delta, delta] (Eq. 3-4) and over the sifted samples
--   losses    channel-wise (Eq. 5) and space-wise (Eq. 6) constraints, functions
--             of a gradient: training on them is a double backward
--   treat     fine-tuning with L = L_ce + alpha*sum L_ch + beta*sum L_sp (Eq. 7)
--
-- Two forms, chosen with form=:
--   "paper": |gradient|, J noisy copies, channel mask from the threshold v on the
--            map normalised by each class's maximum, runner-up term in L_ch
--   "code":  the authors' public code: relu(gradient) of the true-class score,
--            no noise, min-max normalised map thresholded at theta, no runner-up
--            term (one layer is constrained there, but any set works here)
-- Layers are named by module path ("features.20", "layer4.1").
local core = require "mdoctor.core"
local util = require "mdoctor.util"

local doctor = {}

-- {====================================================== model plumbing
--- the module at a dotted path ("layer4.1"); error naming the known ones
function doctor.find(model, path)
  local m = model
  for part in path:gmatch("[^.]+") do
    local nxt = m._modules and m._modules[part]
    if not nxt then
      local names = {}
      for _, e in ipairs(model:named_modules()) do if e[1] ~= "" then names[#names + 1] = e[1] end end
      error(string.format("doctor: no module '%s' in the model (modules: %s)", path,
        table.concat(names, ", "):sub(1, 600)), 3)
    end
    m = nxt
  end
  return m
end

--- conv layers of a model in order, as paths (the usual diagnosis targets)
function doctor.conv_layers(model)
  local out = {}
  for _, e in ipairs(model:named_modules()) do
    if e[2]._name == "Conv2d" then out[#out + 1] = e[1] end
  end
  return out
end

--- run model on x with forward hooks on `paths`; hook(i, out) may return a
-- replacement.  Returns the logits; hooks are removed even on error.
local function with_hooks(model, x, paths, hook)
  local handles = {}
  for i, p in ipairs(paths) do
    handles[i] = doctor.find(model, p):register_forward_hook(function(_, _, out) return hook(i, out) end)
  end
  local ok, res = pcall(model, x)
  for _, h in ipairs(handles) do h.remove() end
  if not ok then error(res, 0) end
  return res
end

--- class scores: logits ("logit", the paper's y_n) or softmax probabilities
local function scores(logits, kind)
  if kind == "prob" then return core.softmax(logits, 2) end
  return logits
end
-- }======================================================

-- {====================================================== sift
--- sift(model, ds, {T=100, n_low=20, batch_size=256, classes=K})
-- -> {high = {[c] = {i, ...}}, low = {[c] = {i, ...}}} with 1-based item
-- numbers per class c (0-based class ids as keys), plus probs of the label.
-- high: the T most confident correctly classified items per class.
-- low: the authors' rule for annotation: correct with low confidence or wrong
-- with high confidence -- ranked by 1 - p(label) if correct, p(pred) if wrong.
function doctor.sift(model, ds, o)
  o = o or {}
  local T, nlow = o.T or 100, o.n_low or 20
  local loader = core.loader(ds, { batch_size = o.batch_size or 256, shuffle = false,
    transform = o.transform or { normalize = true } })
  model:eval()
  local rows = {}
  local idx, nb = 0, 0
  local p = util.progress { total = #loader, label = "sift", unit = "img" }
  core.no_grad(function()
    for images, labels in loader:iter() do
      local probs = core.softmax(model(images), 2)
      local pt, lt = probs:totable(), labels:totable()
      for b = 1, #lt do
        idx = idx + 1
        local row, y = pt[b], lt[b]
        local best, bi = -1, 0
        for j = 1, #row do if row[j] > best then best, bi = row[j], j - 1 end end
        rows[#rows + 1] = { i = idx, y = y, p = row[y + 1], pred = bi, ppred = best }
      end
      nb = nb + 1
      p:update(nb, #lt)
    end
  end)
  p:done()
  local high, low = {}, {}
  local bycls = {}
  for _, r in ipairs(rows) do
    bycls[r.y] = bycls[r.y] or {}
    table.insert(bycls[r.y], r)
  end
  for c, list in pairs(bycls) do
    local correct = {}
    for _, r in ipairs(list) do if r.pred == r.y then correct[#correct + 1] = r end end
    -- ties (p = 1 in float32 is common) broken by item number: a stable order
    table.sort(correct, function(a, b) if a.p ~= b.p then return a.p > b.p end return a.i < b.i end)
    high[c] = {}
    for j = 1, math.min(T, #correct) do high[c][j] = correct[j].i end
    local hard = {}
    for _, r in ipairs(list) do
      hard[#hard + 1] = { i = r.i, score = r.pred == r.y and (1 - r.p) or r.ppred }
    end
    table.sort(hard, function(a, b) if a.score ~= b.score then return a.score > b.score end return a.i < b.i end)
    low[c] = {}
    for j = 1, math.min(nlow, #hard) do low[c][j] = hard[j].i end
  end
  return { high = high, low = low, n = #rows }
end
-- }======================================================

-- {====================================================== diagnose
local function gradient_correlation(g, form)
  -- g (B, C, H, W) -> (B, C): sum over pixels of |g| (paper) or relu(g) (code)
  if g:dim() == 2 then return form == "code" and core.relu(g) or g:abs() end
  local a = form == "code" and core.relu(g) or g:abs()
  return a:sum({ 3, 4 })
end

--- per-sample correlations at one layer: (B, C) averaged over J noisy copies.
-- The J copies go through the network as one batch of J*B (one pass).
function doctor.correlations(model, images, labels, layer, o)
  o = o or {}
  local form, J, delta = o.form or "paper", o.J or 10, o.delta or 0.1
  if form == "code" then J, delta = 1, 0 end
  local B = images:size(1)
  local x, y = images, labels
  if J > 1 then
    local xs, ys = {}, {}
    for j = 1, J do xs[j], ys[j] = images, labels:float() end
    x, y = core.cat(xs, 1), core.cat(ys, 1):long()
  end
  model:eval()
  local m
  local logits = with_hooks(model, x, { layer }, function(_, out)
    local v = out:detach()
    if delta > 0 then v = v + core.uniform(-delta, delta, v:shape()) end
    m = v:requires_grad(true)
    return m
  end)
  local s = core.gather(scores(logits, o.score), 2, y:reshape(y:size(1), 1)):sum()
  local g = core.grad(s, { m })[1]
  local a = gradient_correlation(g, form)
  if J > 1 then a = a:reshape(J, B, a:size(2)):mean(1) end
  return a
end

--- diagnose(model, ds, sifted.high, layers, {form=, J=, delta=, score=, batch_size=, classes=})
-- -> {[layer] = tensor (K, C_layer)}: the mean correlation of each class with
-- each kernel over the class's sifted samples
function doctor.diagnose(model, ds, high, layers, o)
  o = o or {}
  local K = o.classes
  if not K then
    K = 0
    for c in pairs(high) do K = math.max(K, c + 1) end
  end
  local all, cls = {}, {}
  for c = 0, K - 1 do
    for _, i in ipairs(high[c] or {}) do all[#all + 1] = i; cls[#cls + 1] = c end
  end
  if #all == 0 then error("diagnose: no sifted samples (is the model trained?)", 2) end
  local J = (o.form == "code") and 1 or (o.J or 10)
  local bs = o.batch_size or math.max(1, 256 // J)
  local loader = core.loader(ds, { batch_size = bs, shuffle = false, indices = all,
    transform = o.transform or { normalize = true } })
  local maps = {}
  local p = util.progress { total = #loader * #layers, label = "diagnose", unit = "img" }
  local done = 0
  for li, layer in ipairs(layers) do
    local sum, count = nil, {}
    for c = 0, K - 1 do count[c] = 0 end
    for images, labels in loader:iter() do
      local a = doctor.correlations(model, images, labels, layer, o) -- (B, C)
      local oh = core.one_hot(labels, K) -- (B, K)
      local part = core.matmul(oh:transpose(1, 2), a) -- (K, C) class sums
      sum = sum and (sum + part) or part
      for _, y in ipairs(labels:totable()) do count[y] = count[y] + 1 end
      done = done + 1
      p:update(done, labels:size(1))
    end
    local cnt = {}
    for c = 0, K - 1 do cnt[c + 1] = { math.max(count[c], 1) } end
    maps[layer] = (sum / core.tensor(cnt)):detach()
    _ = li
  end
  p:done()
  return maps
end

--- the kernels each class does NOT rely on: (K, C) 0/1 tensor, 1 = irrelevant.
-- paper form: A / max_k A[n,k] < v ; code form: min-max normalised < theta
function doctor.channel_mask(map, o)
  o = o or {}
  local form = o.form or "paper"
  local norm
  if form == "code" then
    local mn = core.neg(core.max(core.neg(map), 2, true))
    local mx = core.max(map, 2, true)
    norm = (map - mn) / (mx - mn + 1e-12)
    return core.lt(norm, o.theta or 0.2)
  end
  local mx = core.max(map, 2, true)
  norm = map / (mx + 1e-12)
  return core.lt(norm, o.v or 0.1)
end

--- how concentrated a map is: per class, the share of kernels needed to hold
-- half of the class's total correlation (small = few specific kernels)
function doctor.sparsity(map)
  local t = map:totable()
  local out = {}
  for c, row in ipairs(t) do
    local sorted, total = {}, 0
    for k, v in ipairs(row) do sorted[k] = v; total = total + v end
    table.sort(sorted, function(a, b) return a > b end)
    local acc, need = 0, #sorted
    for k, v in ipairs(sorted) do
      acc = acc + v
      if acc >= total / 2 then need = k break end
    end
    out[c] = need / #sorted
  end
  return out
end
-- }======================================================

-- {====================================================== constraint losses
--- a loss spec: {form=, ch_layers={...}, sp_layers={...}, ch_masks={[layer]=(K,C)},
-- alpha=1, beta=1, expand=30 (input pixels), runner_up=1, score="logit"}
--
-- losses(model, images, labels, masks, spec) -> logits, ce, l_ch, l_sp (all
-- tensors, differentiable w.r.t. every parameter through double backward).
-- masks: (B,1,H,W) 0/1 object masks or nil; with has_mask (B) 0/1 weights
-- only annotated samples enter L_sp.
function doctor.losses(model, images, labels, masks, spec, has_mask)
  local form = spec.form or "paper"
  local paths, seen = {}, {}
  for _, l in ipairs(spec.ch_layers or {}) do if not seen[l] then seen[l] = true; paths[#paths + 1] = l end end
  for _, l in ipairs(spec.sp_layers or {}) do if not seen[l] then seen[l] = true; paths[#paths + 1] = l end end
  local feats = {}
  local logits = with_hooks(model, images, paths, function(i, out) feats[i] = out end)
  local ce = core.cross_entropy(logits, labels)
  if #paths == 0 then return logits, ce, nil, nil end
  local B = images:size(1)
  local sc = scores(logits, spec.score)
  local ycol = labels:reshape(B, 1)
  -- one double-backward-ready gradient of the label scores for all layers
  local gl = core.grad(core.gather(sc, 2, ycol):sum(), feats, { create_graph = true })
  local gr, ru
  local ru_w = spec.runner_up or 1
  if #(spec.ch_layers or {}) > 0 and ru_w ~= 0 then
    -- runner-up: the best class other than the label (by the detached
    -- logits): the second class when the prediction is right, the predicted
    -- one when it is wrong -- the authors' rule
    local masked = logits:detach() - core.one_hot(labels, logits:size(2)) * 1e9
    ru = core.argmax(masked, 2, true)
    gr = core.grad(core.gather(sc, 2, ru):sum(), feats, { create_graph = true })
    ru = ru:reshape(B)
  end
  local pos = {}
  for i, p in ipairs(paths) do pos[p] = i end
  local lch, lsp
  for _, l in ipairs(spec.ch_layers or {}) do
    local i = pos[l]
    local irr = spec.ch_masks[l]
    if not irr then error("losses: no channel mask for layer '" .. l .. "' (diagnose it first)", 2) end
    local a = gradient_correlation(gl[i], form) -- (B, C)
    local w = core.index_select(irr, 1, labels) -- (B, C) 1 = irrelevant for the label
    local term = (a * w):sum() / B
    if gr then
      if form == "code" then
        -- the authors' code: relu(gradient) of the runner-up on the kernels
        -- relevant to the runner-up
        local rel = 1 - core.index_select(irr, 1, ru)
        term = term + (gradient_correlation(gr[i], "code") * rel):sum() * (ru_w / B)
      else
        -- the paper form as we read Eq. 5: all of the runner-up's gradient
        term = term + gradient_correlation(gr[i], "paper"):sum() * (ru_w / B)
      end
    end
    lch = lch and (lch + term) or term
  end
  for _, l in ipairs(spec.sp_layers or {}) do
    if masks then
      local i = pos[l]
      local g = gl[i]
      local H, W = g:size(3), g:size(4)
      local fg = core.mask_for_layer(masks, spec.expand or 30, H, W) -- (B,1,H,W) 0/1
      local bg = 1 - fg
      local per = (g:abs() * bg):sum({ 2, 3, 4 }) -- (B)
      local term
      if has_mask then
        local nm = math.max(has_mask:sum():item(), 1)
        term = (per * has_mask):sum() / nm
      else
        term = per:sum() / B
      end
      lsp = lsp and (lsp + term) or term
    end
  end
  return logits, ce, lch, lsp
end

--- treat(model, loader, spec, {epochs=, lr=, optimizer=, momentum=, weight_decay=,
-- annotated={ds=, indices={...}, batch_size=, mask_fn=}})
-- fine-tunes with L = CE + alpha * L_ch + beta * L_sp (Eq. 7).  L_ch is taken
-- on the training batches; L_sp on batches of the annotated samples (the
-- low-confidence ones that were given masks), drawn in turn alongside.  The
-- annotated data set either carries masks, or mask_fn(raw images in [0,1])
-- makes them (Fashion-MNIST: the non-zero pixels).
function doctor.treat(model, loader, spec, o)
  local train = require "mdoctor.train"
  o = o or {}
  local opt = train.make_optimizer(model, { optimizer = o.optimizer, lr = o.lr or 0.005,
    momentum = o.momentum, weight_decay = o.weight_decay })
  local alpha, beta = spec.alpha or 1, spec.beta or 1
  local main_spec = { form = spec.form, ch_layers = spec.ch_layers, sp_layers = {}, ch_masks = spec.ch_masks,
    runner_up = spec.runner_up, score = spec.score }
  local sp_spec = { form = spec.form, ch_layers = {}, sp_layers = spec.sp_layers, expand = spec.expand, score = spec.score }
  local next_annotated
  if o.annotated and #(spec.sp_layers or {}) > 0 and #o.annotated.indices > 0 then
    local a = o.annotated
    local info = a.ds:info()
    local aload = core.loader(a.ds, { batch_size = a.batch_size or 32, shuffle = true, seed = a.seed or 0,
      indices = a.indices, transform = a.mask_fn and { normalize = false } or { normalize = true } })
    local mean = core.tensor(info.mean):reshape(1, info.c, 1, 1)
    local std = core.tensor(info.std):reshape(1, info.c, 1, 1)
    local f, st = aload:iter() -- the generic-for triple; driven by hand here
    next_annotated = function()
      local x, y, m = f(st)
      if not x then -- cycle: a new epoch of the annotated samples
        f, st = aload:iter()
        x, y, m = f(st)
      end
      if a.mask_fn then
        m = a.mask_fn(x)
        x = (x - mean) / std
      end
      if not m then error("treat: the annotated samples have no masks (give the data set masks or a mask_fn)", 0) end
      return x, y, m
    end
  end
  local history = {}
  local function step(images, labels)
    local logits, ce, lch = doctor.losses(model, images, labels, nil, main_spec)
    local loss, stats = ce, { ce = ce:item() }
    if lch then
      loss = loss + lch * alpha
      stats.ch = lch:item()
    end
    if next_annotated then
      local xa, ya, ma = next_annotated()
      local _, _, _, lsp = doctor.losses(model, xa, ya, ma, sp_spec)
      if lsp then
        loss = loss + lsp * beta
        stats.sp = lsp:item()
      end
    end
    return loss, logits, stats
  end
  for e = 1, o.epochs or 1 do
    local loss, acc, extra = train.epoch(model, loader, opt, step, string.format("treat %d/%d", e, o.epochs or 1))
    history[#history + 1] = { epoch = e, loss = loss, acc = acc, ce = extra.ce, ch = extra.ch, sp = extra.sp }
    if o.on_epoch then o.on_epoch(e, history[#history]) end
  end
  return history
end
-- }======================================================

-- {====================================================== per-sample diagnosis
--- explain(model, image (C,H,W), label, maps, layer, {mask=(1,H,W), form=, theta=})
-- -> {pred=, runner_up=, probs=, extra={kernels used that the class does not},
--     missing={kernels the class uses that the sample does not}, bg_share=,
--     saliency=(H,W) |d y_label / d x| summed over channels}
function doctor.explain(model, image, label, maps, layer, o)
  o = o or {}
  model:eval()
  local x = image:reshape(1, image:size(1), image:size(2), image:size(3)):detach():requires_grad(true)
  local m
  local logits = with_hooks(model, x, { layer }, function(_, out) m = out end)
  local probs = core.softmax(logits, 2):detach()
  local pt = probs:totable()[1]
  local order = {}
  for j = 1, #pt do order[j] = j end
  table.sort(order, function(a, b) return pt[a] > pt[b] end)
  local pred = order[1] - 1
  local ru = (order[1] - 1 == label) and order[2] - 1 or order[1] - 1
  local score = logits:narrow(2, label + 1, 1):sum()
  local gs = core.grad(score, { m, x })
  local a = gradient_correlation(gs[1], o.form or "paper"):reshape(-1)
  local sal = gs[2]:abs():sum(2):reshape(image:size(2), image:size(3))
  local theta = o.theta or 0.2
  local function norm(t)
    local mx = core.max(t):item()
    return mx > 0 and t / mx or t
  end
  local used = norm(a):totable()
  local cls = norm(maps[layer]:narrow(1, label + 1, 1):reshape(-1)):totable()
  local extra, missing = {}, {}
  for k = 1, #used do
    if used[k] >= theta and cls[k] < theta then extra[#extra + 1] = k end
    if cls[k] >= theta and used[k] < theta then missing[#missing + 1] = k end
  end
  local bg_share
  if o.mask then
    local g = gs[1]
    local fg = core.mask_for_layer(o.mask:reshape(1, 1, o.mask:size(-2), o.mask:size(-1)), o.expand or 0, g:size(3), g:size(4))
    local tot = g:abs():sum():item()
    bg_share = tot > 0 and (g:abs() * (1 - fg)):sum():item() / tot or 0
  end
  return { pred = pred, runner_up = ru, probs = pt, extra = extra, missing = missing,
    bg_share = bg_share, saliency = sal:detach(), correlations = a:detach() }
end

--- Grad-CAM at a layer: relu(sum_k mean_pixels(dy/dm_k) * m_k), (H_l, W_l)
function doctor.gradcam(model, image, class, layer)
  model:eval()
  local x = image:reshape(1, image:size(1), image:size(2), image:size(3))
  local m
  local logits = with_hooks(model, x, { layer }, function(_, out) m = out end)
  local g = core.grad(logits:narrow(2, class + 1, 1):sum(), { m })[1]
  local w = g:mean({ 3, 4 }, true)
  local cam = core.relu((w * m):sum(2)):detach()
  return cam:reshape(m:size(3), m:size(4))
end
-- }======================================================

return doctor
