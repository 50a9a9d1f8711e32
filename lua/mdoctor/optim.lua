--- mdoctor.optim: SGD (momentum, dampening, Nesterov, weight decay), Adam,
-- AdamW, and learning-rate schedules (step, multistep, cosine).  The update
-- rules are PyTorch's (torch/optim/sgd.py, adam.py semantics), so one step
-- matches it to float precision; the tests check this against fixtures.
local core = require "mdoctor.core"

local optim = {}

local checkopts = require("mdoctor.util").checkopts
local function params_of(p)
  if type(p) == "table" and p._is_module then return p:parameters() end
  if type(p) ~= "table" then error("optimizer: a list of tensors or a module expected, got " .. type(p), 3) end
  for i, t in ipairs(p) do
    if not core.is_tensor(t) then error("optimizer: params[" .. i .. "] is not a tensor", 3) end
  end
  return p
end

local Optimizer = {}
Optimizer.__index = Optimizer
function Optimizer:zero_grad()
  for _, p in ipairs(self.params) do p:zero_grad() end
end
--- the update runs with grad mode off: parameters change in place
function Optimizer:step()
  core.no_grad(function() self:_step() end)
end

--- SGD(params, {lr=, momentum=0, dampening=0, weight_decay=0, nesterov=false})
function optim.SGD(params, o)
  checkopts("SGD", o, { "lr", "momentum", "dampening", "weight_decay", "nesterov" })
  o = o or {}
  if type(o.lr) ~= "number" or o.lr < 0 then
    error("SGD: option lr (a number >= 0) is required" .. (o.lr ~= nil and (", got " .. tostring(o.lr)) or ""), 2)
  end
  local self = setmetatable({ params = params_of(params), lr = o.lr, momentum = o.momentum or 0,
    dampening = o.dampening or 0, weight_decay = o.weight_decay or 0, nesterov = o.nesterov or false,
    state = {} }, { __index = Optimizer })
  if self.nesterov and (self.momentum <= 0 or self.dampening ~= 0) then
    error("SGD: Nesterov momentum requires a momentum and zero dampening", 2)
  end
  function self:_step()
    for i, p in ipairs(self.params) do
      local g = p.grad
      if g then
        if self.weight_decay ~= 0 then g = g + p * self.weight_decay end
        if self.momentum ~= 0 then
          local buf = self.state[i]
          if not buf then
            buf = g:clone()
            self.state[i] = buf
          else
            buf:mul_(self.momentum):add_(g, 1 - self.dampening)
          end
          if self.nesterov then g = g + buf * self.momentum else g = buf end
        end
        p:add_(g, -self.lr)
      end
    end
  end
  return self
end

local function adam(name, decoupled, params, o)
  checkopts(name, o, { "lr", "betas", "eps", "weight_decay" })
  o = o or {}
  local self = setmetatable({ params = params_of(params), lr = o.lr or 1e-3, betas = o.betas or { 0.9, 0.999 },
    eps = o.eps or 1e-8, weight_decay = o.weight_decay or (decoupled and 1e-2 or 0), t = 0, m = {}, v = {},
    steps = {} }, { __index = Optimizer })
  function self:_step()
    self.t = self.t + 1
    local b1, b2 = self.betas[1], self.betas[2]
    for i, p in ipairs(self.params) do
      local g = p.grad
      if g then
        -- each parameter counts its own steps (torch's state['step']): one
        -- that had no gradient in some step keeps its bias correction
        local t = (self.steps[i] or 0) + 1
        self.steps[i] = t
        local bc1, bc2 = 1 - b1 ^ t, 1 - b2 ^ t
        if self.weight_decay ~= 0 then
          if decoupled then p:mul_(1 - self.lr * self.weight_decay)
          else g = g + p * self.weight_decay end
        end
        local m, v = self.m[i], self.v[i]
        if not m then
          m, v = core.zeros_like(p), core.zeros_like(p)
          self.m[i], self.v[i] = m, v
        end
        m:mul_(b1):add_(g, 1 - b1)
        v:mul_(b2):add_(g * g, 1 - b2)
        local denom = v:sqrt() / math.sqrt(bc2) + self.eps
        p:add_(m / denom, -self.lr / bc1)
      end
    end
  end
  return self
end
--- Adam(params, {lr=1e-3, betas={0.9,0.999}, eps=1e-8, weight_decay=0})
function optim.Adam(params, o) return adam("Adam", false, params, o) end
--- AdamW(params, {..., weight_decay=1e-2}): decoupled weight decay
function optim.AdamW(params, o) return adam("AdamW", true, params, o) end

-- {====================================================== schedules
--- StepLR(opt, {step_size=, gamma=0.1}); sched:step() once per epoch
function optim.StepLR(opt, o)
  checkopts("StepLR", o, { "step_size", "gamma" })
  if not (o and o.step_size) then error("StepLR: option step_size is required", 2) end
  local s = { opt = opt, base = opt.lr, epoch = 0 }
  function s:step()
    self.epoch = self.epoch + 1
    self.opt.lr = self.base * (o.gamma or 0.1) ^ (self.epoch // o.step_size)
  end
  return s
end
--- MultiStepLR(opt, {milestones={...}, gamma=0.1})
function optim.MultiStepLR(opt, o)
  checkopts("MultiStepLR", o, { "milestones", "gamma" })
  if not (o and o.milestones) then error("MultiStepLR: option milestones is required", 2) end
  local s = { opt = opt, base = opt.lr, epoch = 0 }
  function s:step()
    self.epoch = self.epoch + 1
    local k = 0
    for _, m in ipairs(o.milestones) do if self.epoch >= m then k = k + 1 end end
    self.opt.lr = self.base * (o.gamma or 0.1) ^ k
  end
  return s
end
--- CosineAnnealingLR(opt, {T_max=, eta_min=0})
function optim.CosineAnnealingLR(opt, o)
  checkopts("CosineAnnealingLR", o, { "T_max", "eta_min" })
  if not (o and o.T_max) then error("CosineAnnealingLR: option T_max is required", 2) end
  local s = { opt = opt, base = opt.lr, epoch = 0 }
  function s:step()
    self.epoch = self.epoch + 1
    local emin = o.eta_min or 0
    self.opt.lr = emin + (self.base - emin) * (1 + math.cos(math.pi * self.epoch / o.T_max)) / 2
  end
  return s
end
-- }======================================================

return optim
