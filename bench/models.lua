--- bench/models.lua -- one whole-model measurement in one mdoctor process.
--
--   build/mdoctor bench/models.lua --model resnet18 --step train --threads 2
--
-- Models (recipes/arch at CIFAR size, 3x32x32, batch 32; LeNet 1x28x28,
-- batch 64): lenet, vgg16 (arch.vgg, VGG-16-BN: 13 convs + BN, 4 pools at
-- 32x32, 512x2x2, average pool, one linear), resnet18 (arch.resnet,
-- BasicBlock {2,2,2,2}), mobilenetv2 (arch.mobilenetv2, ReLU6, dropout 0.2).
-- Steps:
--   train     forward, cross-entropy, backward, SGD (lr 1e-3, momentum 0.9)
--   md_last   the Model Doctor step on the last conv layer's output m:
--   md_first  the same on the first conv layer's output
--               g       = d(sum_b logit[b, label_b]) / dm   (create_graph)
--               channel = (relu(g).sum(H,W) * mask[label]).sum() / B
--               space   = (|g| * bg).sum()
--               total   = CE + channel + space; backward (double backward); SGD
--             mask (10, C) and bg (H, W) are fixed random 0/1 tensors.  These
--             are written here with md ops, as bench/torch_models.py writes
--             them with torch ops: doctor.losses' code form computes the
--             same channel term, but its space term divides by B and takes
--             its masks in image space (core.mask_for_layer), which PyTorch
--             has no counterpart of.
--   fwd       forward in eval mode without autograd
--
-- Prints (bench/run_models.lua reads these; bench/torch_models.py prints
-- the same lines):
--   backend <free text>
--   arch model=.. params=.. tensors=.. modules=.. sig=<FNV-1a of the layout>
--   result impl=mdoctor model=.. step=.. threads=.. batch=.. steps=.. warmup=..
--          median_ms=.. min_ms=.. max_ms=.. rss_mb=.. loss=..
-- (the result is one line).  rss_mb is the process's peak resident set
-- (VmHWM of /proc/self/status), warm-up included.
-- --arch prints the arch line only (no timing); --dump-arch the layout itself;
-- --export FILE saves the state after one training step, a batch and its
-- eval-mode logits (safetensors) for `torch_models.py --verify FILE`.
local md = require "mdoctor"
local nn = md.nn
local optim = md.optim

local MODELS = {
  lenet = { arch = "lenet", opts = { in_channels = 1, input_size = 28 }, shape = { 1, 28, 28 }, batch = 64 },
  vgg16 = { arch = "vgg", opts = { input_size = 32 }, shape = { 3, 32, 32 }, batch = 32 },
  resnet18 = { arch = "resnet", opts = { blocks = { 2, 2, 2, 2 } }, shape = { 3, 32, 32 }, batch = 32 },
  mobilenetv2 = { arch = "mobilenetv2", opts = {}, shape = { 3, 32, 32 }, batch = 32 },
}
local STEPS = { train = true, md_last = true, md_first = true, fwd = true }

local function usage(f)
  f:write [[
usage: mdoctor bench/models.lua [--model lenet|vgg16|resnet18|mobilenetv2]
         [--step train|md_last|md_first|fwd] [--threads N] [--steps N] [--warmup N]
         [--batch N] [--seed N] [--arch] [--dump-arch] [--check] [--export FILE]
]]
end

local function parse(args)
  local o = { model = "lenet", step = "train", threads = 1, steps = 10, warmup = 3, seed = 0 }
  local flags = { arch = true, ["dump-arch"] = true, check = true, help = true }
  local i = 1
  while i <= #args do
    local a = args[i]
    local k, v = a:match("^%-%-([%w_-]+)=(.*)$")
    if not k then k = a:match("^%-%-([%w_-]+)$") end
    if not k then error("models.lua: unexpected argument '" .. a .. "'", 0) end
    if flags[k] then
      o[k] = true
    else
      if v == nil then
        i = i + 1
        v = args[i]
      end
      if v == nil then error("models.lua: option --" .. k .. " needs a value", 0) end
      if k == "model" or k == "step" or k == "export" then o[k] = v
      elseif k == "threads" or k == "steps" or k == "warmup" or k == "batch" or k == "seed" then
        o[k] = math.tointeger(tonumber(v))
        if not o[k] or o[k] < 0 then error("models.lua: --" .. k .. " takes a whole number >= 0, got '" .. v .. "'", 0) end
      else
        usage(io.stderr)
        error("models.lua: unknown option --" .. k, 0)
      end
    end
    i = i + 1
  end
  if o.help then usage(io.stdout) os.exit(0) end
  if not MODELS[o.model] then error("models.lua: unknown model '" .. o.model .. "' (lenet, vgg16, resnet18, mobilenetv2)", 0) end
  if not STEPS[o.step] then error("models.lua: unknown step '" .. o.step .. "' (train, md_last, md_first, fwd)", 0) end
  if o.threads < 1 or o.steps < 1 then error("models.lua: --threads and --steps must be >= 1", 0) end
  return o
end

-- {====================================================== layout signature
-- modules "path:Type" and parameters "name:AxBx..", one a line, in
-- registration order (PyTorch's modules() / named_parameters() order);
-- torch_models.py builds the same text from its models
local function layout(model)
  local lines, params, tensors, modules = {}, 0, 0, 0
  for _, e in ipairs(model:named_modules()) do
    lines[#lines + 1] = "m " .. e[1] .. ":" .. (e[2]._name or "Module")
    modules = modules + 1
  end
  for _, e in ipairs(model:named_parameters()) do
    local t, dims = e[2], {}
    for d = 1, t:dim() do dims[d] = tostring(t:size(d)) end
    lines[#lines + 1] = "p " .. e[1] .. ":" .. table.concat(dims, "x")
    params = params + t:numel()
    tensors = tensors + 1
  end
  return table.concat(lines, "\n"), params, tensors, modules
end

-- FNV-1a, 32 bits
local function fnv1a(s)
  local h = 2166136261
  for i = 1, #s do h = ((h ~ s:byte(i)) * 16777619) & 0xffffffff end
  return string.format("%08x", h)
end
-- }======================================================

local function peak_rss_mb()
  local f = io.open("/proc/self/status")
  if not f then return -1 end
  local s = f:read("a")
  f:close()
  local kb = s:match("VmHWM:%s*(%d+)")
  return kb and tonumber(kb) / 1024 or -1
end

local function conv_paths(model)
  local out = {}
  for _, e in ipairs(model:named_modules()) do
    if e[2]._name == "Conv2d" then out[#out + 1] = { e[1], e[2] } end
  end
  return out
end

local function main(args)
  local o = parse(args)
  md.set_num_threads(o.threads)
  md.manual_seed(o.seed)
  local spec = MODELS[o.model]
  local model = require("arch." .. spec.arch)(spec.opts)
  local text, nparams, ntensors, nmodules = layout(model)
  if o["dump-arch"] then print(text) return end
  print("backend mdoctor " .. md.blas_info())
  print(string.format("arch model=%s params=%d tensors=%d modules=%d sig=%s", o.model, nparams, ntensors, nmodules,
    fnv1a(text)))
  if o.arch then return end
  if o.export then
    -- one training step (weights and BN running statistics move), then the
    -- eval-mode logits of a batch: torch_models.py --verify loads the state
    -- into its model and must give the same logits
    local x = md.randn(4, spec.shape[1], spec.shape[2], spec.shape[3])
    local opt = optim.SGD(model, { lr = 0.05, momentum = 0.9 })
    model:train()
    md.cross_entropy(model(x), md.randint(0, 10, 4)):backward()
    opt:step()
    model:eval()
    local sd = model:state_dict()
    sd.__x = x
    sd.__logits = md.no_grad(function() return model(x) end)
    -- and the Model Doctor terms on the last conv (eval mode: no dropout),
    -- with the gradient of their sum on the first parameter, which only the
    -- double backward reaches from channel and space
    local convs = conv_paths(model)
    local m
    local h = convs[#convs][2]:register_forward_hook(function(_, _, out) m = out end)
    local y = md.randint(0, 10, 4)
    opt:zero_grad()
    local logits = model(x)
    h.remove()
    local C, H, W = m:size(2), m:size(3), m:size(4)
    local mask, bg = md.gt(md.rand(10, C), 0.5):float(), md.gt(md.rand(H, W), 0.5):float()
    local g = md.grad(md.gather(logits, 2, y:reshape(4, 1)):sum(), { m }, { create_graph = true })[1]
    local ce = md.cross_entropy(logits, y)
    local channel = (md.relu(g):sum({ 3, 4 }) * md.index_select(mask, 1, y)):sum() / 4
    local space = (g:abs() * bg):sum()
    local total = ce + channel + space
    total:backward()
    local first = model:named_parameters()[1]
    sd.__y, sd.__mask, sd.__bg = y, mask, bg
    sd.__terms = md.tensor({ ce:item(), channel:item(), space:item() })
    sd.__gfirst = first[2].grad
    md.save(o.export, sd)
    print("export " .. o.export)
    return
  end

  local B = o.batch or spec.batch
  local x = md.randn(B, spec.shape[1], spec.shape[2], spec.shape[3])
  local y = md.randint(0, 10, B)
  local opt = optim.SGD(model, { lr = 1e-3, momentum = 0.9 })
  model:train()

  local step
  if o.step == "train" then
    step = function()
      opt:zero_grad()
      local loss = md.cross_entropy(model(x), y)
      loss:backward()
      opt:step()
      return loss
    end
  elseif o.step == "fwd" then
    step = function()
      model:eval()
      local out = md.no_grad(function() return model(x) end)
      model:train()
      return out
    end
  else
    local convs = conv_paths(model)
    local conv = (o.step == "md_last" and convs[#convs] or convs[1])[2]
    local m, on = nil, false
    conv:register_forward_hook(function(_, _, out) if on then m = out end end)
    -- the hooked map's shape, from a probe of two images
    model:eval()
    on = true
    md.no_grad(function() model(x:narrow(1, 1, math.min(2, B))) end)
    on = false
    model:train()
    local C, H, W = m:size(2), m:size(3), m:size(4)
    m = nil
    local mask = md.gt(md.rand(10, C), 0.5):float() -- (classes, C) 1 = irrelevant kernel
    local bgt = md.gt(md.rand(H, W), 0.5):totable() -- (H, W) background
    bgt[1][1] = 1 -- never all zero (VGG's last map is 2x2)
    local bg = md.tensor(bgt)
    local ycol = y:reshape(B, 1)
    local idx_mask = md.index_select(mask, 1, y) -- (B, C), fixed labels
    step = function()
      opt:zero_grad()
      on = true
      local logits = model(x)
      on = false
      local fm = m
      m = nil
      local ce = md.cross_entropy(logits, y)
      local g = md.grad(md.gather(logits, 2, ycol):sum(), { fm }, { create_graph = true })[1]
      local channel = (md.relu(g):sum({ 3, 4 }) * idx_mask):sum() / B
      local space = (g:abs() * bg):sum()
      local total = ce + channel + space
      total:backward()
      opt:step()
      return total, ce, channel, space
    end
    if o.check then
      local total, ce, channel, space = step()
      print(string.format("check ce=%.4f channel=%.4f space=%.4f total=%.4f hooked=%dx%dx%dx%d", ce:item(),
        channel:item(), space:item(), total:item(), B, C, H, W))
    end
  end

  for _ = 1, o.warmup do step() end
  local ts, last = {}, nil
  for i = 1, o.steps do
    local t0 = md.now()
    last = step()
    ts[i] = (md.now() - t0) * 1e3
  end
  local final = o.step == "fwd" and 0 or last:item()
  table.sort(ts)
  local n = #ts
  local med = n % 2 == 1 and ts[(n + 1) // 2] or (ts[n // 2] + ts[n // 2 + 1]) / 2
  print(string.format("result impl=mdoctor model=%s step=%s threads=%d batch=%d steps=%d warmup=%d "
    .. "median_ms=%.3f min_ms=%.3f max_ms=%.3f rss_mb=%.1f loss=%.4f", o.model, o.step, md.get_num_threads(), B,
    o.steps, o.warmup, med, ts[1], ts[n], peak_rss_mb(), final))
end

-- run as a script (a test loads this file for layout() and fnv1a())
local script = arg and arg[0] or ""
if script == "models.lua" or script:match("/models%.lua$") then
  local ok, err = pcall(main, arg)
  if not ok then
    io.stderr:write(tostring(err), "\n")
    os.exit(1)
  end
end

return { MODELS = MODELS, layout = layout, fnv1a = fnv1a, peak_rss_mb = peak_rss_mb }
