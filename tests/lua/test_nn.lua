-- tests/lua/test_nn.lua -- mdoctor.nn against torch.nn: every module's output,
-- parameter names and order as PyTorch's state_dict, train/eval, batch norm
-- running statistics, state_dict round trips, load errors, forward hooks,
-- default initialisation, zero_grad.
local T = dofile("tests/lua/harness.lua")
local md = require "mdoctor"
local nn = md.nn
local tensor = T.tensor

local fx = md.load(T.fixture("lua_nn.safetensors"))

local function shape_is(t, s) return tostring(t:shape()) == "md.Size{" .. table.concat(s, ", ") .. "}" end
-- the entries of fx under prefix, with the prefix removed
local function sub(prefix) return T.under(fx, prefix) end
-- a names list stored as bytes joined by newlines
local function names(t)
  local bytes = t:totable()
  local s = string.char(table.unpack(bytes))
  local out = {}
  for n in s:gmatch("[^\n]+") do out[#out + 1] = n end
  return out
end
local function keys_of(list) -- {{name, t}, ...} -> {name, ...}
  local out = {}
  for i, e in ipairs(list) do out[i] = e[1] end
  return out
end
local function sorted_keys(tbl)
  local out = {}
  for k in pairs(tbl) do out[#out + 1] = k end
  table.sort(out)
  return out
end
local same_list = T.same_list
-- there is no requires_grad getter (t:requires_grad() sets it): ask autograd
local function requires(t) return (t * 1):grad_fn() ~= nil end
local function list_str(l) return "{" .. table.concat(l, ", ") .. "}" end

-- {====================================================== activations, Identity, Flatten, Dropout
T.run("activations", function()
  local x = fx["act.x"]
  local mods = { relu = nn.ReLU(), relu6 = nn.ReLU6(), leaky_relu = nn.LeakyReLU(0.2), sigmoid = nn.Sigmoid(),
    tanh = nn.Tanh(), silu = nn.SiLU(), hardswish = nn.Hardswish(), hardsigmoid = nn.Hardsigmoid() }
  for _, k in ipairs(sorted_keys(mods)) do
    local y = mods[k](x)
    T.check(shape_is(y, { 2, 3, 5, 5 }), k .. ": shape")
    T.close(y, fx["act." .. k], 1e-5, 1e-6, "nn." .. k .. " vs torch")
  end
  T.close(nn.ReLU6()(x * 3), fx["act.relu6_big"], 1e-5, 1e-6, "ReLU6 clips at 6")
  T.close(nn.LeakyReLU()(tensor { -100, 5 }), { -1, 5 }, 1e-6, 0, "LeakyReLU default slope 0.01")
  local id = nn.Identity()
  T.check(id(x) == x, "Identity returns its input")
  T.check(shape_is(nn.Flatten()(x), { 2, 75 }), "Flatten keeps the batch dim")
  T.check(shape_is(nn.Flatten(3)(x), { 2, 3, 25 }), "Flatten(3)")
  T.check(shape_is(nn.Flatten(1, 2)(x), { 6, 5, 5 }), "Flatten(1, 2)")
  T.close(nn.Flatten()(x), x:reshape(2, -1), 0, 0, "Flatten values")

  -- Dropout: train scales the kept values by 1/(1-p), eval is the identity
  md.manual_seed(5)
  local d = nn.Dropout(0.3)
  local ones = md.ones(20000)
  local y = d(ones)
  local zeros = md.lt(y, 0.5):sum():item()
  local kept = md.gt(y, 0.5)
  T.close((y * kept):sum():item() / kept:sum():item(), 1 / 0.7, 1e-5, 0, "Dropout train: kept values are 1/(1-p)")
  T.check(math.abs(zeros / 20000 - 0.3) < 0.015, string.format("Dropout train: %.3f dropped (p 0.3)", zeros / 20000))
  d:eval()
  T.close(d(x), x, 0, 0, "Dropout eval is the identity")
  T.check(nn.Dropout().p == 0.5, "Dropout default p 0.5")
  local d0 = nn.Dropout(0)
  T.close(d0(x), x, 0, 0, "Dropout(0) in training keeps everything")
end)
-- }======================================================

-- {====================================================== pools
T.run("pools", function()
  local x = fx["pool.x"]
  local cases = {
    { "max3s2p1", nn.MaxPool2d(3, { stride = 2, padding = 1 }), { 2, 3, 4, 4 } },
    { "max2ceil", nn.MaxPool2d(2, { ceil_mode = true }), { 2, 3, 4, 4 } },
    { "avg2", nn.AvgPool2d(2), { 2, 3, 3, 3 } },
    { "avg3s2p1", nn.AvgPool2d(3, { stride = 2, padding = 1 }), { 2, 3, 4, 4 } },
    { "avg3s2p1_nopad", nn.AvgPool2d(3, { stride = 2, padding = 1, count_include_pad = false }), { 2, 3, 4, 4 } },
    { "adapt2", nn.AdaptiveAvgPool2d(2), { 2, 3, 2, 2 } },
    { "adapt3x2", nn.AdaptiveAvgPool2d({ 3, 2 }), { 2, 3, 3, 2 } },
  }
  for _, c in ipairs(cases) do
    local y = c[2](x)
    T.check(shape_is(y, c[3]), c[1] .. ": shape " .. tostring(y:shape()))
    T.close(y, fx["pool." .. c[1]], 1e-5, 1e-6, c[1] .. " vs torch")
  end
  T.check(shape_is(nn.MaxPool2d(2)(x), { 2, 3, 3, 3 }), "MaxPool2d(2) floors 7 -> 3")
  T.err(function() nn.MaxPool2d(2, { kernel = 3 }) end, "unknown option 'kernel'", "MaxPool2d unknown option")
  T.err(function() nn.AvgPool2d(2, { dilation = 2 }) end, "unknown option 'dilation'", "AvgPool2d unknown option")
end)
-- }======================================================

-- {====================================================== Conv2d, Linear
T.run("Conv2d and Linear", function()
  local x = fx["conv.x"]
  local cg = nn.Conv2d(4, 6, 3, { stride = 2, padding = 1, groups = 2, bias = false })
  T.check(cg.bias == nil and #cg:parameters() == 1, "Conv2d bias=false has no bias")
  T.check(shape_is(cg.weight, { 6, 2, 3, 3 }), "grouped Conv2d weight shape (out, in/groups, kh, kw)")
  cg:load_state_dict { weight = fx["conv.g.weight"] }
  local y = cg(x)
  T.check(shape_is(y, { 2, 6, 4, 4 }), "grouped strided conv: shape")
  T.close(y, fx["conv.g.y"], 1e-5, 1e-5, "Conv2d groups=2 stride=2 padding=1 no bias vs torch")

  local cs = nn.Conv2d(4, 3, { 3, 2 }, { stride = { 2, 1 }, padding = { 1, 0 } })
  T.check(shape_is(cs.weight, { 3, 4, 3, 2 }) and shape_is(cs.bias, { 3 }), "rectangular kernel shapes")
  cs:load_state_dict { weight = fx["conv.s.weight"], bias = fx["conv.s.bias"] }
  T.close(cs(x), fx["conv.s.y"], 1e-5, 1e-5, "Conv2d kernel {3,2} stride {2,1} padding {1,0} vs torch")

  local lin = nn.Linear(5, 4)
  lin:load_state_dict { weight = fx["lin.weight"], bias = fx["lin.bias"] }
  T.close(lin(fx["lin.x"]), fx["lin.y"], 1e-5, 1e-6, "Linear vs torch")
  local lnb = nn.Linear(5, 4, { bias = false })
  T.check(lnb.bias == nil and #lnb:parameters() == 1, "Linear bias=false")
  T.check(shape_is(lnb(fx["lin.x"]), { 3, 4 }), "Linear bias=false output shape")

  T.err(function() nn.Conv2d(3, 4, 3, { pad = 1 }) end, "unknown option 'pad'", "Conv2d unknown option")
  -- option errors point at the line that made the layer, not into nn.lua
  local msg = T.errmsg(function() local c = nn.Conv2d(3, 4, 3, { pad = 1 }); return c end) or ""
  T.check(msg:find("^tests/lua/test_nn.lua:%d+: Conv2d") ~= nil, "option error located at the caller: " .. msg)
  msg = T.errmsg(function() local c = nn.Conv2d(3, 4, 3, { groups = 2 }); return c end) or ""
  T.check(msg:find("^tests/lua/test_nn.lua:%d+: Conv2d") ~= nil, "groups error located at the caller: " .. msg)
  T.err(function() nn.Linear(3, 4, true) end, "options must be a table", "Linear with a non-table options")
  T.err(function() nn.Conv2d(3, 4, 3, { groups = 2 }) end, "divisible by groups", "Conv2d channels not divisible by groups")
  T.err(function() nn.Linear(3, 4, { bias = true, foo = 1 }) end, "unknown option 'foo'", "Linear unknown option")
  T.err(function() cg(md.zeros(1, 3, 8, 8)) end, "channels", "Conv2d forward on the wrong channel count")
end)
-- }======================================================

-- {====================================================== default initialisation
T.run("default init", function()
  md.manual_seed(11)
  local function bounds(t)
    local a = t:abs()
    return md.max(a):item(), a:mean():item()
  end
  local c = nn.Conv2d(6, 16, 5)
  local b = 1 / math.sqrt(6 * 25)
  local mx, mean = bounds(c.weight)
  T.check(mx <= b and mx > 0.95 * b, string.format("Conv2d weight in [-%.4f, %.4f], max |w| %.4f", b, b, mx))
  T.check(math.abs(mean - b / 2) < 0.05 * b, string.format("Conv2d weight uniform: mean |w| %.4f ~ bound/2", mean))
  local bmx = bounds(c.bias)
  T.check(bmx <= b and bmx > 0.5 * b, "Conv2d bias within 1/sqrt(fan_in)")
  local cg = nn.Conv2d(8, 8, 3, { groups = 4 })
  local bg = 1 / math.sqrt(2 * 9)
  mx = bounds(cg.weight)
  T.check(mx <= bg and mx > 0.8 * bg, string.format("grouped Conv2d: fan_in = in/groups*k*k (max %.4f, bound %.4f)", mx, bg))
  local l = nn.Linear(400, 30)
  local bl = 1 / math.sqrt(400)
  mx, mean = bounds(l.weight)
  T.check(mx <= bl and mx > 0.95 * bl, string.format("Linear weight within 1/sqrt(400) (max %.5f)", mx))
  T.check(math.abs(mean - bl / 2) < 0.05 * bl, "Linear weight uniform")
  mx = bounds(l.bias)
  T.check(mx <= bl and mx > 0.5 * bl, "Linear bias within 1/sqrt(fan_in)")
  local w = c.weight:reshape(-1)
  T.check(md.max(w):item() > 0 and md.max(-w):item() > 0, "init has both signs")
  local bn = nn.BatchNorm2d(3)
  T.close(bn.weight, { 1, 1, 1 }, 0, 0, "BatchNorm2d weight starts at 1")
  T.close(bn.bias, { 0, 0, 0 }, 0, 0, "BatchNorm2d bias starts at 0")
  T.close(bn.running_mean, { 0, 0, 0 }, 0, 0, "running_mean starts at 0")
  T.close(bn.running_var, { 1, 1, 1 }, 0, 0, "running_var starts at 1")
  T.check(bn.num_batches_tracked:dtype() == "int64" and bn.num_batches_tracked:item() == 0, "num_batches_tracked starts at 0 (int64)")
  for _, p in ipairs(c:parameters()) do T.check(requires(p) and p:is_leaf(), "parameters are leaves requiring grad") end
end)
-- }======================================================

-- {====================================================== a Sequential net vs torch
local function make_net()
  return nn.Sequential(nn.Conv2d(3, 4, 3, { padding = 1 }), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
    nn.Flatten(), nn.Linear(64, 5))
end

T.run("Sequential net vs torch", function()
  local net = make_net()
  -- names exactly as PyTorch's
  T.check(same_list(keys_of(net:named_parameters()), names(fx["names.net_params"])),
    "named_parameters order as torch: " .. list_str(keys_of(net:named_parameters())))
  local sd = net:state_dict()
  local want_state = names(fx["names.net_state"])
  local want_sorted = { table.unpack(want_state) }
  table.sort(want_sorted)
  T.check(same_list(sorted_keys(sd), want_sorted), "state_dict keys as torch: " .. list_str(sorted_keys(sd)))
  T.check(net:num_parameters() == 3 * 4 * 9 + 4 + 4 + 4 + 64 * 5 + 5, "num_parameters")
  T.check(#net == 6 and net:get(6) == net["5"], "#seq and seq:get(i) (1-based) / seq['5']")
  T.check(#net:children() == 6, "children")

  net:load_state_dict(sub("net.sd."))
  T.check(net["1"].num_batches_tracked:item() == 5, "load_state_dict sets num_batches_tracked")
  T.close(net["1"].running_var, fx["net.sd.1.running_var"], 0, 0, "load_state_dict copies buffers")
  T.check(requires(net["0"].weight), "loaded parameters still require grad")
  net:train()
  local x, y = fx["net.x"], fx["net.y"]
  local out = net(x)
  T.close(out, fx["net.out_train"], 1e-5, 1e-5, "train-mode output vs torch")
  local loss = md.F.cross_entropy(out, y)
  T.close(loss, fx["net.loss"], 1e-5, 1e-6, "loss vs torch")
  net:zero_grad()
  loss:backward()
  for _, e in ipairs(net:named_parameters()) do
    T.close(e[2].grad, fx["net.grad." .. e[1]], 1e-4, 1e-5, "grad of " .. e[1] .. " vs torch")
  end
  -- running statistics after one training step
  local bn = net["1"]
  T.close(bn.running_mean, fx["net.after.1.running_mean"], 1e-5, 1e-6, "running_mean after a train step")
  T.close(bn.running_var, fx["net.after.1.running_var"], 1e-5, 1e-6, "running_var (unbiased) after a train step")
  T.check(bn.num_batches_tracked:item() == fx["net.after.1.num_batches_tracked"]:item(),
    "num_batches_tracked after a train step: " .. bn.num_batches_tracked:item())
  -- eval uses the running statistics and changes nothing
  net:eval()
  local rm = bn.running_mean:clone()
  local oe = net(x)
  T.close(oe, fx["net.out_eval"], 1e-5, 1e-5, "eval-mode output vs torch")
  T.close(bn.running_mean, rm, 0, 0, "eval leaves running_mean alone")
  T.check(bn.num_batches_tracked:item() == 6, "eval does not count batches")
  T.check(oe:grad_fn() ~= nil, "eval mode still records the graph (it is not no_grad)")
  -- zero_grad
  T.check(net["0"].weight.grad ~= nil, "grads present before zero_grad")
  net:zero_grad()
  local none = true
  for _, p in ipairs(net:parameters()) do if p.grad ~= nil then none = false end end
  T.check(none, "zero_grad clears every parameter's grad")
  -- train()/eval() propagate to every module
  local all = function(mode)
    for _, e in ipairs(net:named_modules()) do if e[2].training ~= mode then return false end end
    return true
  end
  T.check(all(false), "eval() reaches every module")
  T.check(net:train() == net and all(true), "train() reaches every module and returns self")
  net:train(false)
  T.check(all(false), "train(false) == eval()")
  T.check(#net:named_modules() == 7 and net:named_modules()[1][1] == "", "named_modules: self first, then 6 children")
  local s = tostring(net)
  T.check(s:find("Sequential", 1, true) and s:find("Conv2d", 1, true) and s:find("(5): Linear", 1, true),
    "tostring shows the structure: " .. s:gsub("\n", " | "))
end)
-- }======================================================

-- {====================================================== Module subclass + Block vs torch
T.run("Module:extend and nn.Block vs torch", function()
  local Res = nn.Block {
    name = "Res",
    init = function(self, c)
      self.conv = nn.Conv2d(c, c, 3, { padding = 1 })
      self.bn = nn.BatchNorm2d(c)
    end,
    forward = function(self, x) return x + md.relu(self.bn(self.conv(x))) end,
  }
  local Net = nn.Module:extend("Net")
  function Net:init()
    self.stem = nn.Sequential(nn.Conv2d(3, 4, 3, { padding = 1, bias = false }), nn.BatchNorm2d(4), nn.ReLU())
    self.block = Res(4)
    self.pool = nn.AdaptiveAvgPool2d(1)
    self.fc = nn.Linear(4, 3)
  end
  function Net:forward(x)
    return self.fc(md.flatten(self.pool(self.block(self.stem(x))), 2))
  end
  local net = Net()
  T.check(net._name == "Net" and tostring(net):find("Res", 1, true) ~= nil, "subclass name and repr")
  T.check(same_list(keys_of(net:named_parameters()), names(fx["names.res_params"])),
    "named_parameters as torch: " .. list_str(keys_of(net:named_parameters())))
  local want = names(fx["names.res_state"])
  table.sort(want)
  T.check(same_list(sorted_keys(net:state_dict()), want), "state_dict keys as torch")
  net:load_state_dict(sub("res.sd."))
  local x = fx["res.x"]
  net:train()
  T.close(net(x), fx["res.out_train"], 1e-5, 1e-5, "subclass net, train mode vs torch")
  net:eval()
  T.close(net(x), fx["res.out_eval"], 1e-5, 1e-5, "subclass net, eval mode vs torch (running stats updated once)")
  T.check(net.block.bn.num_batches_tracked:item() == 1, "the block's bn counted one batch")
  T.check(net.block.training == false and net.stem["1"].training == false, "eval reaches nested children")

  -- a child assigned after construction is registered too
  net.extra = nn.Linear(2, 2)
  T.check(net:named_parameters()[#net:named_parameters()][1] == "extra.bias", "a child added later is registered")
  -- a plain subclass without forward
  local NoFwd = nn.Module:extend("NoFwd")
  T.err(function() NoFwd()(x) end, "forward is not defined", "a module without forward")
  -- subclassing a layer keeps its behaviour
  local MyLin = nn.Linear:extend("MyLin")
  function MyLin:forward(z) return nn.Linear.forward(self, z) * 2 end
  local ml = MyLin(5, 4)
  ml:load_state_dict { weight = fx["lin.weight"], bias = fx["lin.bias"] }
  T.close(ml(fx["lin.x"]), fx["lin.y"] * 2, 1e-5, 1e-6, "subclass of Linear overrides forward")
  -- Sequential with named children
  local ns = nn.Sequential({ "conv", nn.Conv2d(1, 2, 3) }, { "act", nn.ReLU() })
  T.check(same_list(sorted_keys(ns:state_dict()), { "conv.bias", "conv.weight" }), "Sequential of {name, module} pairs")
  T.check(shape_is(ns(md.zeros(1, 1, 5, 5)), { 1, 2, 3, 3 }), "named Sequential runs")
end)
-- }======================================================

-- {====================================================== state_dict round trip, load errors
T.run("state_dict save/load", function()
  md.manual_seed(3)
  local a, b = make_net(), make_net()
  a:load_state_dict(sub("net.sd."))
  local x = fx["net.x"]
  a(x) -- one train step moves the running stats
  a:eval()
  local path = T.tmpdir() .. "/net.safetensors"
  md.save(path, a:state_dict())
  local sd = md.load(path)
  T.check(sd["1.num_batches_tracked"]:dtype() == "int64" and sd["1.num_batches_tracked"]:item() == 6,
    "num_batches_tracked saved as int64")
  T.check(#sorted_keys(sd) == 9, "nine entries saved")
  b:load_state_dict(sd)
  b:eval()
  T.close(b(x), a(x), 0, 0, "a net loaded from the file computes the same")
  for _, e in ipairs(a:named_parameters()) do
    local pb = b:state_dict()[e[1]]
    T.close(pb, e[2], 0, 0, "round trip of " .. e[1])
  end
  T.check(a:state_dict()["0.weight"]:grad_fn() == nil and not requires(a:state_dict()["0.weight"]),
    "state_dict parameters are detached")
  -- state_dict shares storage with the model (as torch): loading does not alias
  local w0 = b["0"].weight:clone()
  md.no_grad(function() a["0"].weight:fill_(0) end)
  T.close(b["0"].weight, w0, 0, 0, "load_state_dict copies, it does not alias")

  -- errors name the keys
  local good = sub("net.sd.")
  local function without(k)
    local t = {}
    for kk, v in pairs(good) do if kk ~= k then t[kk] = v end end
    return t
  end
  T.err(function() b:load_state_dict(without("0.bias")) end, "0.bias", "missing key named")
  T.err(function() b:load_state_dict(without("1.running_var")) end, "missing keys: 1.running_var", "missing buffer named")
  local extra = without("nothing")
  extra["6.weight"] = md.zeros(2)
  T.err(function() b:load_state_dict(extra) end, "unexpected keys: 6.weight", "unexpected key named")
  local bad = without("nothing")
  bad["5.weight"] = md.zeros(5, 63)
  local msg = T.errmsg(function() b:load_state_dict(bad) end) or ""
  T.check(msg:find("5.weight", 1, true) and msg:find("{5, 63}", 1, true) and msg:find("{5, 64}", 1, true),
    "mis-shaped key named with both shapes: " .. msg)
  local notensor = without("nothing")
  notensor["0.bias"] = 3
  T.err(function() b:load_state_dict(notensor) end, "0.bias is a number, not a tensor", "a non-tensor value named")
  -- a failed load changes nothing
  local before = b["5"].weight:clone()
  pcall(function() b:load_state_dict(bad) end)
  T.close(b["5"].weight, before, 0, 0, "a failed load_state_dict leaves the model unchanged")
  -- non-strict
  local part = without("5.bias")
  part["junk"] = md.zeros(1)
  local missing, unexpected = b:load_state_dict(part, false)
  T.check(#missing == 1 and missing[1] == "5.bias" and #unexpected == 1 and unexpected[1] == "junk",
    "strict=false returns missing and unexpected keys")
end)
-- }======================================================

-- {====================================================== forward hooks
T.run("forward hooks", function()
  local net = make_net()
  net:load_state_dict(sub("net.sd."))
  net:eval()
  local x = fx["net.x"]
  local ref = net(x)
  local seen, seen_in, seen_mod
  local h1 = net["2"]:register_forward_hook(function(m, input, output)
    seen_mod, seen_in, seen = m, input, output
  end)
  local out = net(x)
  T.close(out, ref, 0, 0, "a hook returning nil keeps the output")
  T.check(seen_mod == net["2"] and md.is_tensor(seen) and shape_is(seen, { 4, 4, 8, 8 }), "hook sees the module and its output")
  T.close(seen, md.relu(seen_in), 0, 0, "hook sees the input (relu(input) == output)")
  T.check(md.max(md.lt(seen, 0)):item() == 0, "the ReLU output seen by the hook is non-negative")
  h1:remove()
  seen = nil
  net(x)
  T.check(seen == nil, "handle:remove() stops the hook")
  -- replace the output of the last layer, then of the whole net
  local h2 = net["5"]:register_forward_hook(function(_, _, o) return o * 0 + 1 end)
  T.close(net(x), md.ones(4, 5), 0, 0, "a hook's return value replaces the output")
  local h3 = net:register_forward_hook(function(_, _, o) return o * 2 end)
  T.close(net(x), md.full(4, 5, 2), 0, 0, "hooks on the container see the replaced child output")
  h2:remove()
  h3:remove()
  T.close(net(x), ref, 0, 0, "after removing every hook the output is back")
  -- two hooks run in order
  local order = {}
  local ha = net["0"]:register_forward_hook(function() order[#order + 1] = "a" end)
  local hb = net["0"]:register_forward_hook(function() order[#order + 1] = "b" end)
  net(x)
  T.check(table.concat(order) == "ab", "hooks run in registration order")
  ha:remove()
  hb:remove()
  -- a hook that errors makes the forward fail with its message
  local hx = net["0"]:register_forward_hook(function() error("hook failure") end)
  T.err(function() net(x) end, "hook failure", "an error in a forward hook")
  hx:remove()
end)
-- }======================================================

-- {====================================================== batch norm alone
T.run("BatchNorm2d", function()
  md.manual_seed(9)
  local bn = nn.BatchNorm2d(3, { momentum = 0.5, eps = 1e-3 })
  local x = md.randn(4, 3, 2, 2) * 2 + 1
  local y = bn(x)
  -- hand-computed: per channel, (x - mean) / sqrt(var_biased + eps)
  local mean = x:mean({ 1, 3, 4 }, true)
  local var = ((x - mean) * (x - mean)):mean({ 1, 3, 4 }, true)
  T.close(y, (x - mean) / (var + 1e-3):sqrt(), 1e-4, 1e-5, "train: normalises with the batch stats")
  local n = 16
  T.close(bn.running_mean, mean:reshape(3) * 0.5, 1e-5, 1e-6, "running_mean with momentum 0.5")
  T.close(bn.running_var, var:reshape(3) * (n / (n - 1)) * 0.5 + 0.5, 1e-5, 1e-6, "running_var unbiased with momentum 0.5")
  bn:eval()
  local ye = bn(x)
  T.close(ye, (x - bn.running_mean:reshape(1, 3, 1, 1)) / (bn.running_var:reshape(1, 3, 1, 1) + 1e-3):sqrt(), 1e-4, 1e-5,
    "eval: normalises with the running stats")
  T.err(function() nn.BatchNorm2d(3, { mom = 0.1 }) end, "unknown option 'mom'", "BatchNorm2d unknown option")
  local nb = nn.BatchNorm2d(3, { affine = false })
  T.check(#nb:parameters() == 0 and nb.running_mean ~= nil, "affine=false: no parameters, still stats")
  T.close(nb(x), (x - mean) / (var + 1e-5):sqrt(), 1e-4, 1e-5, "affine=false output")
  local nt = nn.BatchNorm2d(3, { track_running_stats = false })
  T.check(nt.running_mean == nil and #sorted_keys(nt:state_dict()) == 2, "track_running_stats=false: no buffers")
  nt:eval()
  T.close(nt(x), (x - mean) / (var + 1e-5):sqrt(), 1e-4, 1e-5, "no running stats: eval uses batch stats")
end)
-- }======================================================

T.cleanup()
T.summary()
