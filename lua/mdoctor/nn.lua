--- mdoctor.nn: modules with named parameters and buffers, train/eval,
-- state_dict, forward hooks, and the layers a CNN needs.  Names follow
-- PyTorch (weight, bias, running_mean, ...; children by attribute name,
-- Sequential children "1", "2", ... -- see README on index bases), so
-- state_dicts can be exchanged through safetensors files.
local core = require "mdoctor.core"

local nn = {}

-- {====================================================== Module
local Module = {}
Module.__index = Module
nn.Module = Module

--- Module:extend(name) -> a new class; Class(...) calls Class.init(self, ...)
function Module:extend(name)
  local cls = setmetatable({}, { __index = self, __call = function(c, ...) return c.new(c, ...) end })
  cls.__index = cls
  cls.__call = function(m, ...) return m:call(...) end
  cls.__tostring = function(m) return m:repr() end
  cls._name = name
  return cls
end

function Module.new(cls, ...)
  local m = setmetatable({ _params = {}, _buffers = {}, _modules = {}, _order = {}, _hooks = {},
    training = true, _is_module = true }, cls)
  if cls.init then cls.init(m, ...) end
  return m
end

local function remember(m, name)
  for _, n in ipairs(m._order) do if n == name then return end end
  m._order[#m._order + 1] = name
end

function Module:register_parameter(name, t)
  assert(t == nil or core.is_tensor(t), "register_parameter: a tensor (or nil) expected")
  if t and t:is_leaf() then t:requires_grad(true) end
  self._params[name] = t or false
  remember(self, name)
  rawset(self, name, t)
  return t
end
function Module:register_buffer(name, t)
  self._buffers[name] = t or false
  remember(self, name)
  rawset(self, name, t)
  return t
end
function Module:add_module(name, m)
  assert(type(m) == "table" and m._is_module, "add_module: a module expected for '" .. tostring(name) .. "'")
  self._modules[name] = m
  remember(self, name)
  rawset(self, name, m)
  return m
end

--- assignment of a module or a parameter keeps the registries in step
function Module:set(name, v)
  if type(v) == "table" and v._is_module then return self:add_module(name, v) end
  if self._buffers[name] ~= nil then return self:register_buffer(name, v) end
  return self:register_parameter(name, v)
end

local function walk(m, prefix, f)
  for _, n in ipairs(m._order) do
    local full = prefix == "" and n or (prefix .. "." .. n)
    if m._params[n] ~= nil then f("param", full, rawget(m, n), m, n)
    elseif m._buffers[n] ~= nil then f("buffer", full, rawget(m, n), m, n)
    else f("module", full, m._modules[n], m, n); walk(m._modules[n], full, f) end
  end
end

function Module:named_parameters()
  local out = {}
  walk(self, "", function(kind, full, t) if kind == "param" and t then out[#out + 1] = { full, t } end end)
  return out
end
function Module:parameters()
  local out = {}
  for _, p in ipairs(self:named_parameters()) do out[#out + 1] = p[2] end
  return out
end
function Module:named_buffers()
  local out = {}
  walk(self, "", function(kind, full, t) if kind == "buffer" and t then out[#out + 1] = { full, t } end end)
  return out
end
function Module:named_modules()
  local out = { { "", self } }
  walk(self, "", function(kind, full, m) if kind == "module" then out[#out + 1] = { full, m } end end)
  return out
end
function Module:children()
  local out = {}
  for _, n in ipairs(self._order) do if self._modules[n] then out[#out + 1] = self._modules[n] end end
  return out
end
function Module:num_parameters()
  local n = 0
  for _, p in ipairs(self:parameters()) do n = n + p:numel() end
  return n
end

function Module:train(mode)
  if mode == nil then mode = true end
  for _, e in ipairs(self:named_modules()) do e[2].training = mode end
  return self
end
function Module:eval() return self:train(false) end

function Module:zero_grad()
  for _, p in ipairs(self:parameters()) do p:zero_grad() end
end

--- state_dict(): name -> tensor (parameters detached, and buffers)
function Module:state_dict()
  local sd = {}
  walk(self, "", function(kind, full, t)
    if (kind == "param" or kind == "buffer") and t then sd[full] = kind == "param" and t:detach() or t end
  end)
  return sd
end

--- load_state_dict(sd [, strict=true]): copies values in; errors name every
-- missing, unexpected or mis-shaped key
function Module:load_state_dict(sd, strict)
  if strict == nil then strict = true end
  local missing, unexpected, shapes, nontensor, seen = {}, {}, {}, {}, {}
  local targets = {}
  walk(self, "", function(kind, full, t, owner, name)
    if (kind == "param" or kind == "buffer") and t then
      targets[full] = { owner, name, t }
      local v = sd[full]
      if v == nil then missing[#missing + 1] = full
      elseif not core.is_tensor(v) then nontensor[#nontensor + 1] = full .. " is a " .. type(v) .. ", not a tensor"
      elseif tostring(v:shape()) ~= tostring(t:shape()) then
        shapes[#shapes + 1] = string.format("%s: checkpoint %s, model %s", full, tostring(v:shape()), tostring(t:shape()))
      end
      seen[full] = true
    end
  end)
  for k in pairs(sd) do if not seen[k] then unexpected[#unexpected + 1] = k end end
  table.sort(unexpected)
  local errs = {}
  if #nontensor > 0 then errs[#errs + 1] = table.concat(nontensor, "; ") end
  if #shapes > 0 then errs[#errs + 1] = "size mismatch for " .. table.concat(shapes, "; ") end
  if strict and #missing > 0 then errs[#errs + 1] = "missing keys: " .. table.concat(missing, ", ") end
  if strict and #unexpected > 0 then errs[#errs + 1] = "unexpected keys: " .. table.concat(unexpected, ", ") end
  if #errs > 0 then error("load_state_dict: " .. table.concat(errs, "; "), 2) end
  core.no_grad(function()
    for k, e in pairs(targets) do
      local v, t = sd[k], e[3]
      if v then
        if t:dtype() == "int64" then rawset(e[1], e[2], v:long():clone()) -- counters: replace
        else t:copy_(v:float()) end
      end
    end
  end)
  return missing, unexpected
end

--- forward hooks: fn(module, input, output) -> nil or a replacement output.
-- Returns a handle with :remove().
function Module:register_forward_hook(fn)
  local h = { fn = fn }
  self._hooks[#self._hooks + 1] = h
  local hooks = self._hooks
  function h.remove()
    for i, x in ipairs(hooks) do if x == h then table.remove(hooks, i) return end end
  end
  return h
end

function Module:call(...)
  local out = self:forward(...)
  if #self._hooks > 0 then
    local input = ...
    for _, h in ipairs(self._hooks) do
      local r = h.fn(self, input, out)
      if r ~= nil then out = r end
    end
  end
  return out
end

function Module:forward()
  error((self._name or "Module") .. ": forward is not defined", 2)
end

function Module:extra_repr() return "" end
function Module:repr(indent)
  indent = indent or ""
  local kids = self:children()
  local head = (self._name or "Module") .. "(" .. self:extra_repr()
  if #kids == 0 then return head .. ")" end
  local lines = { head }
  for _, n in ipairs(self._order) do
    local m = self._modules[n]
    if m then lines[#lines + 1] = indent .. "  (" .. n .. "): " .. m:repr(indent .. "  ") end
  end
  lines[#lines + 1] = indent .. ")"
  return table.concat(lines, "\n")
end
Module.__tostring = Module.repr
-- }======================================================

-- {====================================================== init (as PyTorch)
local function uniform_(t, bound)
  core.no_grad(function() t:copy_(core.uniform(-bound, bound, t:shape())) end)
  return t
end
nn.init = {}
--- kaiming_uniform_ with a = sqrt(5): PyTorch's default for conv and linear
function nn.init.default_(w, b, fan_in)
  local bound = 1 / math.sqrt(fan_in)
  uniform_(w, bound)
  if b then uniform_(b, bound) end
end
function nn.init.kaiming_normal_(w, fan_out)
  core.no_grad(function() w:copy_(core.randn(w:shape()) * math.sqrt(2 / fan_out)) end)
end
function nn.init.constant_(t, v) core.no_grad(function() t:fill_(v) end) end
-- }======================================================

-- {====================================================== layers
local function opt(o, k, d) if o and o[k] ~= nil then return o[k] end return d end
-- called from a layer's init, itself called by Module.new (which the class's
-- __call tail-calls): level 4 is the code that made the layer
local function checkopts(name, o, known) return require("mdoctor.util").checkopts(name, o, known, 4) end -- a tail call: no frame of its own
local function pair(v) if type(v) == "table" then return v[1], v[2] end return v, v end

--- Conv2d(in, out, kernel_size, {stride=1, padding=0, dilation=1, groups=1, bias=true})
nn.Conv2d = Module:extend("Conv2d")
function nn.Conv2d:init(cin, cout, k, o)
  checkopts("Conv2d", o, { "stride", "padding", "dilation", "groups", "bias" })
  local groups = opt(o, "groups", 1)
  assert(math.type(cin) == "integer" and math.type(cout) == "integer", "Conv2d: channel counts must be integers")
  if cin % groups ~= 0 or cout % groups ~= 0 then
    error(string.format("Conv2d: in_channels %d and out_channels %d must be divisible by groups %d", cin, cout, groups), 3)
  end
  local kh, kw = pair(k)
  self.in_channels, self.out_channels, self.kernel_size = cin, cout, { kh, kw }
  self.opts = { stride = opt(o, "stride", 1), padding = opt(o, "padding", 0),
    dilation = opt(o, "dilation", 1), groups = groups }
  self:register_parameter("weight", core.zeros(cout, cin // groups, kh, kw))
  self:register_parameter("bias", opt(o, "bias", true) and core.zeros(cout) or nil)
  nn.init.default_(self.weight, self.bias, cin // groups * kh * kw)
end
function nn.Conv2d:forward(x) return core.conv2d(x, self.weight, self.bias, self.opts) end
function nn.Conv2d:extra_repr()
  local o = self.opts
  return string.format("%d, %d, kernel_size=%dx%d, stride=%s, padding=%s%s%s", self.in_channels,
    self.out_channels, self.kernel_size[1], self.kernel_size[2], tostring(o.stride), tostring(o.padding),
    o.groups > 1 and (", groups=" .. o.groups) or "", self.bias and "" or ", bias=false")
end

--- Linear(in, out, {bias=true})
nn.Linear = Module:extend("Linear")
function nn.Linear:init(fin, fout, o)
  checkopts("Linear", o, { "bias" })
  self.in_features, self.out_features = fin, fout
  self:register_parameter("weight", core.zeros(fout, fin))
  self:register_parameter("bias", opt(o, "bias", true) and core.zeros(fout) or nil)
  nn.init.default_(self.weight, self.bias, fin)
end
function nn.Linear:forward(x) return core.linear(x, self.weight, self.bias) end
function nn.Linear:extra_repr() return string.format("%d, %d", self.in_features, self.out_features) end

--- BatchNorm2d(C, {eps=1e-5, momentum=0.1, affine=true, track_running_stats=true})
nn.BatchNorm2d = Module:extend("BatchNorm2d")
function nn.BatchNorm2d:init(c, o)
  checkopts("BatchNorm2d", o, { "eps", "momentum", "affine", "track_running_stats" })
  self.num_features, self.eps, self.momentum = c, opt(o, "eps", 1e-5), opt(o, "momentum", 0.1)
  if opt(o, "affine", true) then
    self:register_parameter("weight", core.ones(c))
    self:register_parameter("bias", core.zeros(c))
  end
  if opt(o, "track_running_stats", true) then
    self:register_buffer("running_mean", core.zeros(c))
    self:register_buffer("running_var", core.ones(c))
    self:register_buffer("num_batches_tracked", core.tensor(0, { dtype = "int64" }))
  end
end
function nn.BatchNorm2d:forward(x)
  local training = self.training or not self.running_mean
  if self.training and self.num_batches_tracked then
    self.num_batches_tracked = core.tensor(self.num_batches_tracked:item() + 1, { dtype = "int64" })
  end
  return core.batch_norm(x, { running_mean = self.running_mean, running_var = self.running_var,
    weight = self.weight, bias = self.bias, training = training, momentum = self.momentum, eps = self.eps })
end
function nn.BatchNorm2d:extra_repr() return tostring(self.num_features) end
nn.BatchNorm1d = nn.BatchNorm2d:extend("BatchNorm1d")

local function simple(name, f, repr)
  local cls = Module:extend(name)
  cls.forward = function(self, x) return f(self, x) end
  if repr then cls.extra_repr = repr end
  return cls
end
nn.ReLU = simple("ReLU", function(_, x) return core.relu(x) end)
nn.ReLU6 = simple("ReLU6", function(_, x) return core.relu6(x) end)
nn.Sigmoid = simple("Sigmoid", function(_, x) return core.sigmoid(x) end)
nn.Tanh = simple("Tanh", function(_, x) return core.tanh(x) end)
nn.SiLU = simple("SiLU", function(_, x) return core.silu(x) end)
nn.Hardswish = simple("Hardswish", function(_, x) return core.hardswish(x) end)
nn.Hardsigmoid = simple("Hardsigmoid", function(_, x) return core.hardsigmoid(x) end)
nn.Identity = simple("Identity", function(_, x) return x end)
nn.LeakyReLU = simple("LeakyReLU", function(self, x) return core.leaky_relu(x, self.slope) end)
function nn.LeakyReLU:init(s) self.slope = s or 0.01 end

--- Flatten(start_dim=2, end_dim=-1): 1-based dims, so the batch dim stays
nn.Flatten = simple("Flatten", function(self, x) return core.flatten(x, self.s, self.e) end)
function nn.Flatten:init(s, e) self.s, self.e = s or 2, e or -1 end

--- MaxPool2d(kernel_size, {stride=kernel, padding=0, dilation=1, ceil_mode=false})
nn.MaxPool2d = simple("MaxPool2d", function(self, x) return core.max_pool2d(x, self.opts) end,
  function(self)
    local k = self.opts.kernel_size
    return "kernel_size=" .. (type(k) == "table" and (k[1] .. "x" .. k[2]) or tostring(k))
  end)
function nn.MaxPool2d:init(k, o)
  checkopts("MaxPool2d", o, { "stride", "padding", "dilation", "ceil_mode" })
  self.opts = { kernel_size = k, stride = opt(o, "stride", k), padding = opt(o, "padding", 0),
    dilation = opt(o, "dilation", 1), ceil_mode = opt(o, "ceil_mode", false) }
end
nn.AvgPool2d = simple("AvgPool2d", function(self, x) return core.avg_pool2d(x, self.opts) end)
function nn.AvgPool2d:init(k, o)
  checkopts("AvgPool2d", o, { "stride", "padding", "ceil_mode", "count_include_pad" })
  self.opts = { kernel_size = k, stride = opt(o, "stride", k), padding = opt(o, "padding", 0),
    ceil_mode = opt(o, "ceil_mode", false), count_include_pad = opt(o, "count_include_pad", true) }
end
nn.AdaptiveAvgPool2d = simple("AdaptiveAvgPool2d", function(self, x) return core.adaptive_avg_pool2d(x, self.size) end)
function nn.AdaptiveAvgPool2d:init(s) self.size = s end
nn.Dropout = simple("Dropout", function(self, x) return core.dropout(x, self.p, self.training) end)
function nn.Dropout:init(p) self.p = p or 0.5 end

--- Sequential(m1, m2, ...) or Sequential{name = m, ...} (ordered list of pairs)
nn.Sequential = Module:extend("Sequential")
function nn.Sequential:init(...)
  local args = { ... }
  for i, m in ipairs(args) do
    if type(m) == "table" and not m._is_module and m[1] then -- {name, module}
      self:add_module(m[1], m[2])
    else
      self:add_module(tostring(i - 1), m) -- "0", "1", ... as PyTorch, for state_dict exchange
    end
  end
end
function nn.Sequential:forward(x)
  for _, m in ipairs(self:children()) do x = m(x) end
  return x
end
function nn.Sequential:__len() return #self:children() end
nn.Sequential.__len = nn.Sequential.__len
--- seq:get(i): the i-th child (1-based)
function nn.Sequential:get(i) return self:children()[i] end

--- Block{init = function(self, ...) end, forward = function(self, x) end}: a
-- module with an arbitrary Lua forward (residual, concat, squeeze-excitation)
function nn.Block(def)
  local cls = Module:extend(def.name or "Block")
  for k, v in pairs(def) do if k ~= "name" then cls[k] = v end end
  return cls
end
-- }======================================================

--- children assigned as fields after creation (m.conv = nn.Conv2d(...)) are
-- registered by Module.__newindex on every class made by extend
local function newindex(m, k, v)
  if type(v) == "table" and rawget(v, "_is_module") then m:add_module(k, v)
  elseif core.is_tensor(v) and rawget(m, "_params") and m._params[k] ~= nil then m:register_parameter(k, v)
  elseif core.is_tensor(v) and rawget(m, "_buffers") and m._buffers[k] ~= nil then m:register_buffer(k, v)
  else rawset(m, k, v) end
end
local extend = Module.extend
function Module:extend(name)
  local cls = extend(self, name)
  cls.__newindex = newindex
  return cls
end
for _, cls in pairs(nn) do
  if type(cls) == "table" and cls._name then cls.__newindex = newindex end
end

return nn
