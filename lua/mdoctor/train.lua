--- mdoctor.train: the ordinary parts of an experiment -- fitting a model
-- with a progress line, and evaluating it (top-1, top-5, per class,
-- confusion matrix).  The Model Doctor parts live in mdoctor.doctor.
local core = require "mdoctor.core"
local optim = require "mdoctor.optim"
local util = require "mdoctor.util"

local train = {}

local opts_check = util.checkopts

--- make_optimizer(model, {optimizer="sgd"|"adam"|"adamw", lr=, momentum=, weight_decay=, nesterov=})
function train.make_optimizer(model, o)
  local kind = (o.optimizer or "sgd"):lower()
  if kind == "sgd" then
    return optim.SGD(model, { lr = o.lr or 0.05, momentum = o.momentum or 0.9,
      weight_decay = o.weight_decay or 5e-4, nesterov = o.nesterov or false })
  elseif kind == "adam" then
    return optim.Adam(model, { lr = o.lr or 1e-3, weight_decay = o.weight_decay or 0 })
  elseif kind == "adamw" then
    return optim.AdamW(model, { lr = o.lr or 1e-3, weight_decay = o.weight_decay or 1e-2 })
  end
  error("unknown optimizer '" .. tostring(o.optimizer) .. "' (sgd, adam or adamw)", 2)
end

--- one epoch; step_fn(images, labels, masks) -> loss tensor, logits, extra stats
-- (a table of numbers shown on the progress line).  Returns mean loss, accuracy,
-- and the means of the extra stats.
function train.epoch(model, loader, opt, step_fn, label)
  model:train()
  local p = util.progress { total = #loader, label = label or "train", unit = "img" }
  local n, correct, seen, sum_loss, extra = 0, 0, 0, 0, {}
  for images, labels, masks in loader:iter() do
    opt:zero_grad()
    local loss, logits, stats = step_fn(images, labels, masks)
    local lv = loss:item()
    if lv ~= lv or lv == math.huge or lv == -math.huge then
      error(string.format("%s: the loss became %s at batch %d (lower the learning rate or the constraint weights)",
        label or "train", tostring(lv), n + 1), 0)
    end
    loss:backward()
    opt:step()
    n = n + 1
    local b = labels:size(1)
    seen = seen + b
    correct = correct + core.eq(core.argmax(logits, 2):float(), labels:float()):sum():item()
    sum_loss = sum_loss + lv * b
    for k, v in pairs(stats or {}) do extra[k] = (extra[k] or 0) + v * b end
    local shown = { loss = sum_loss / seen, acc = correct / seen }
    for k, v in pairs(extra) do shown[k] = v / seen end
    p:update(n, b, shown)
  end
  for k, v in pairs(extra) do extra[k] = v / math.max(seen, 1) end
  p:done { loss = sum_loss / math.max(seen, 1), acc = correct / math.max(seen, 1) }
  return sum_loss / math.max(seen, 1), correct / math.max(seen, 1), extra
end

--- fit(model, loader, {epochs=, lr=, optimizer=, momentum=, weight_decay=,
-- schedule="cosine"|"step"|"none", on_epoch=function(epoch, stats)})
function train.fit(model, loader, o)
  opts_check("fit", o, { "epochs", "lr", "optimizer", "momentum", "weight_decay", "nesterov", "schedule", "on_epoch", "label" })
  o = o or {}
  local epochs = o.epochs or 1
  local opt = train.make_optimizer(model, o)
  local sched
  if (o.schedule or "cosine") == "cosine" then sched = optim.CosineAnnealingLR(opt, { T_max = epochs })
  elseif o.schedule == "step" then sched = optim.StepLR(opt, { step_size = math.max(1, epochs // 3) }) end
  local function step(images, labels)
    local logits = model(images)
    return core.cross_entropy(logits, labels), logits
  end
  for e = 1, epochs do
    local loss, acc = train.epoch(model, loader, opt, step, string.format("%sepoch %d/%d", o.label or "", e, epochs))
    if o.on_epoch then o.on_epoch(e, { loss = loss, acc = acc, lr = opt.lr }) end
    if sched then sched:step() end
  end
  return opt
end

--- logits for every item a loader yields, in order (eval mode, no grad):
-- returns logits (N,K) and labels (N) tensors
function train.predict(model, loader)
  model:eval()
  local outs, labs = {}, {}
  core.no_grad(function()
    for images, labels in loader:iter() do
      outs[#outs + 1] = model(images)
      labs[#labs + 1] = labels
    end
  end)
  for i, l in ipairs(labs) do labs[i] = l:float() end
  return core.cat(outs, 1), core.cat(labs, 1):long()
end

--- evaluate(model, loader, num_classes) -> {top1=, top5=, per_class={...},
-- confusion={{...}} (rows: true class, cols: predicted), n=}
function train.evaluate(model, loader, k)
  local logits, labels = train.predict(model, loader)
  local n = labels:size(1)
  k = k or logits:size(2)
  local lt, yt = logits:totable(), labels:totable()
  local conf, per_n, per_ok, top1, top5 = {}, {}, {}, 0, 0
  for i = 1, k do
    conf[i] = {}
    for j = 1, k do conf[i][j] = 0 end
    per_n[i], per_ok[i] = 0, 0
  end
  for i = 1, n do
    local row, y = lt[i], yt[i] + 1
    local order = {}
    for j = 1, #row do order[j] = j end
    table.sort(order, function(a, b) return row[a] > row[b] end)
    local pred = order[1]
    conf[y][pred] = conf[y][pred] + 1
    per_n[y] = per_n[y] + 1
    if pred == y then top1 = top1 + 1; per_ok[y] = per_ok[y] + 1 end
    for j = 1, math.min(5, #order) do if order[j] == y then top5 = top5 + 1 break end end
  end
  local per = {}
  for i = 1, k do per[i] = per_n[i] > 0 and per_ok[i] / per_n[i] or 0 end
  return { top1 = top1 / math.max(n, 1), top5 = top5 / math.max(n, 1), per_class = per, confusion = conf, n = n }
end

return train
