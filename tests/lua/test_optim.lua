-- tests/lua/test_optim.lua -- mdoctor.optim against torch.optim: one and three
-- steps of SGD (plain, momentum, Nesterov, weight decay, dampening), Adam and
-- AdamW on fixed parameters and gradients; StepLR, MultiStepLR and
-- CosineAnnealingLR sequences; option errors.
local T = dofile("tests/lua/harness.lua")
local md = require "mdoctor"
local optim, nn = md.optim, md.nn
local tensor = T.tensor

local fx = md.load(T.fixture("lua_optim.safetensors"))

-- the configurations of tests/gen_lua_fixtures.py (OPTIM_CONFIGS)
local CONFIGS = {
  { "sgd", "SGD", { lr = 0.1 } },
  { "sgd_mom", "SGD", { lr = 0.1, momentum = 0.9 } },
  { "sgd_nesterov", "SGD", { lr = 0.1, momentum = 0.9, nesterov = true } },
  { "sgd_wd", "SGD", { lr = 0.1, weight_decay = 0.05 } },
  { "sgd_damp", "SGD", { lr = 0.05, momentum = 0.8, dampening = 0.3, weight_decay = 0.01 } },
  { "adam", "Adam", { lr = 0.01 } },
  { "adam_wd", "Adam", { lr = 0.02, betas = { 0.8, 0.99 }, eps = 1e-6, weight_decay = 0.1 } },
  { "adamw", "AdamW", { lr = 0.01 } },
  { "adamw_wd", "AdamW", { lr = 0.02, betas = { 0.85, 0.995 }, eps = 1e-7, weight_decay = 0.1 } },
}

T.run("optimisers vs torch", function()
  for _, c in ipairs(CONFIGS) do
    local name, cls, o = c[1], c[2], c[3]
    local a = fx["p0.a"]:clone():requires_grad()
    local b = fx["p0.b"]:clone():requires_grad()
    local opt = optim[cls]({ a, b }, o)
    for s = 1, 3 do
      a.grad = fx["g" .. s .. ".a"]:clone()
      b.grad = fx["g" .. s .. ".b"]:clone()
      opt:step()
      if s == 1 or s == 3 then
        T.close(a, fx[name .. "." .. s .. ".a"], 1e-5, 1e-6, string.format("%s: a after %d step%s", name, s, s > 1 and "s" or ""))
        T.close(b, fx[name .. "." .. s .. ".b"], 1e-5, 1e-6, string.format("%s: b after %d step%s", name, s, s > 1 and "s" or ""))
      end
    end
    T.check(a:is_leaf() and (a * 1):grad_fn() ~= nil, name .. ": parameters stay leaves that require grad")
    -- the step really moved the parameters (the fixture is not the start)
    local moved = md.max((fx[name .. ".3.a"] - fx["p0.a"]):abs()):item()
    T.check(moved > 1e-3, string.format("%s: three steps move a by %.3g", name, moved))
  end
end)

T.run("optimiser mechanics", function()
  -- a parameter without a gradient is left alone
  local p = md.tensor({ 1, 2 }, {}):requires_grad()
  local q = md.tensor({ 3, 4 }, {}):requires_grad()
  local opt = optim.SGD({ p, q }, { lr = 0.5, momentum = 0.9 })
  p.grad = md.ones(2)
  opt:step()
  T.close(p, { 0.5, 1.5 }, 1e-6, 0, "SGD step with a gradient")
  T.close(q, { 3, 4 }, 0, 0, "no gradient, no update")
  opt:zero_grad()
  T.check(p.grad == nil and q.grad == nil, "zero_grad clears the gradients")
  T.check(md.is_grad_enabled(), "step restores grad mode")
  -- lr can be changed between steps
  opt.lr = 0.1
  p.grad = md.ones(2)
  opt:step()
  -- buf = 0.9 * 1 + 1 = 1.9
  T.close(p, { 0.5 - 0.19, 1.5 - 0.19 }, 1e-6, 0, "changed lr and momentum buffer used")
  -- Adam counts steps per parameter (torch's state['step']): a parameter
  -- that first gets a gradient in the second step makes a first step,
  -- whose size is lr * g / (|g| + eps) with the bias corrections
  for _, cls in ipairs { "Adam", "AdamW" } do
    local u = md.tensor({ 1, -1 }, {}):requires_grad()
    local v = md.tensor({ 2, 2 }, {}):requires_grad()
    local ad = optim[cls]({ u, v }, { lr = 0.1, weight_decay = 0 })
    u.grad = md.ones(2)
    ad:step()
    ad:zero_grad()
    u.grad = md.ones(2)
    v.grad = tensor { 3, -0.5 }
    ad:step()
    T.close(v, { 2 - 0.1 * 3 / (3 + 1e-8), 2 + 0.1 * 0.5 / (0.5 + 1e-8) }, 1e-6, 1e-7,
      cls .. ": a parameter's first gradient in step 2 makes a first step")
  end
  -- a module as params, a training step lowers the loss
  md.manual_seed(4)
  local net = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 2))
  local x, y = md.randn(32, 3), md.randint(0, 2, 32)
  for _, o in ipairs { optim.SGD(net, { lr = 0.1, momentum = 0.9 }), optim.Adam(net, { lr = 0.01 }), optim.AdamW(net, { lr = 0.01 }) } do
    local l0 = md.F.cross_entropy(net(x), y):item()
    for _ = 1, 30 do
      o:zero_grad()
      md.F.cross_entropy(net(x), y):backward()
      o:step()
    end
    local l1 = md.F.cross_entropy(net(x), y):item()
    T.check(l1 < l0, string.format("training with a module's parameters lowers the loss (%.4f -> %.4f)", l0, l1))
  end
  T.check(#optim.SGD(net, { lr = 1 }).params == 4, "a module gives its parameters")
  -- AdamW's default weight decay is 1e-2 (torch's), Adam's 0
  T.check(optim.AdamW({ p }, {}).weight_decay == 1e-2 and optim.Adam({ p }, {}).weight_decay == 0, "default weight decays")
  T.check(optim.Adam({ p }).lr == 1e-3, "Adam default lr 1e-3")
end)

T.run("lr schedules vs torch", function()
  local function run(make, n)
    local p = md.zeros(1):requires_grad()
    local opt = optim.SGD({ p }, { lr = 0.1 })
    local s = make(opt)
    local seq = { opt.lr }
    for _ = 1, n do
      opt:step()
      s:step()
      seq[#seq + 1] = opt.lr
    end
    return seq
  end
  local cases = {
    { "step", function(o) return optim.StepLR(o, { step_size = 3, gamma = 0.5 }) end, 10 },
    { "step_default", function(o) return optim.StepLR(o, { step_size = 2 }) end, 7 },
    { "multistep", function(o) return optim.MultiStepLR(o, { milestones = { 2, 5, 7 }, gamma = 0.3 }) end, 10 },
    { "cosine", function(o) return optim.CosineAnnealingLR(o, { T_max = 6, eta_min = 0.001 }) end, 15 },
    { "cosine0", function(o) return optim.CosineAnnealingLR(o, { T_max = 4 }) end, 8 },
  }
  for _, c in ipairs(cases) do
    local got = run(c[2], c[3])
    local want = fx["sched." .. c[1]]
    T.close(got, want, 1e-5, 1e-9, "lr sequence " .. c[1] .. " vs torch (" .. #got .. " values)")
  end
  -- the schedules act on the optimiser's lr, which the step uses
  local p = md.tensor({ 0 }, {}):requires_grad()
  local opt = optim.SGD({ p }, { lr = 1 })
  local s = optim.StepLR(opt, { step_size = 1, gamma = 0.5 })
  for _ = 1, 3 do
    p.grad = md.ones(1)
    opt:step()
    s:step()
  end
  T.close(p, { -(1 + 0.5 + 0.25) }, 1e-6, 0, "steps use the scheduled lr")
end)

T.run("option errors", function()
  local p = md.zeros(2):requires_grad()
  T.err(function() optim.SGD({ p }, { lr = 0.1, momentun = 0.9 }) end, "unknown option 'momentun'", "SGD unknown option")
  T.err(function() optim.SGD({ p }, { momentum = 0.9 }) end, "option lr", "SGD without lr")
  T.err(function() optim.SGD({ p }) end, "option lr", "SGD without options")
  T.err(function() optim.SGD({ p }, { lr = -1 }) end, "lr", "SGD with a negative lr")
  T.err(function() optim.SGD({ p }, { lr = 0.1, nesterov = true }) end, "Nesterov", "Nesterov without momentum")
  T.err(function() optim.SGD({ p }, { lr = 0.1, momentum = 0.9, dampening = 0.1, nesterov = true }) end, "Nesterov",
    "Nesterov with dampening")
  T.err(function() optim.Adam({ p }, { lr = 0.1, beta = { 0.9, 0.99 } }) end, "unknown option 'beta'", "Adam unknown option")
  T.err(function() optim.AdamW({ p }, { lr = 0.1, momentum = 0.9 }) end, "unknown option 'momentum'", "AdamW unknown option")
  T.err(function() optim.SGD({ p, 3 }, { lr = 0.1 }) end, "params[2] is not a tensor", "a non-tensor parameter")
  T.err(function() optim.SGD(42, { lr = 0.1 }) end, "list of tensors or a module", "params not a list")
  T.err(function() optim.SGD({ p }, { lr = "0.1" }) end, "option lr (a number >= 0)", "SGD with a string lr")
  T.err(function() optim.Adam({ p }, 0.1) end, "options must be a table", "Adam with a number for options")
  local opt = optim.SGD({ p }, { lr = 0.1 })
  T.err(function() optim.StepLR(opt, { gamma = 0.5 }) end, "step_size", "StepLR without step_size")
  T.err(function() optim.StepLR(opt, { step_size = 2, gama = 0.5 }) end, "unknown option 'gama'", "StepLR unknown option")
  T.err(function() optim.MultiStepLR(opt, {}) end, "milestones", "MultiStepLR without milestones")
  T.err(function() optim.CosineAnnealingLR(opt, { eta_min = 0 }) end, "T_max", "CosineAnnealingLR without T_max")
  T.err(function() optim.CosineAnnealingLR(opt, { T_max = 3, tmax = 3 }) end, "unknown option 'tmax'", "CosineAnnealingLR unknown option")
end)

T.summary()
