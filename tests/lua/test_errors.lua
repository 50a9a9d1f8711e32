-- tests/lua/test_errors.lua -- wrong uses from Lua: each must be a Lua error
-- whose message names the problem (and the shapes where shapes are the
-- problem), never a crash, and the session must go on working afterwards.
local T = dofile("tests/lua/harness.lua")
local md = require "mdoctor"
local nn, optim, F = md.nn, md.optim, md.F
local tensor = T.tensor
local function i64(v) return md.tensor(v, { dtype = "int64" }) end

-- every message must contain every pattern (plain text)
local function err(name, f, ...)
  local pats = { ... }
  local msg = T.errmsg(f)
  if not msg then return T.report(false, name, "no error raised") end
  for _, p in ipairs(pats) do
    if not msg:find(p, 1, true) then
      return T.report(false, name, string.format("message '%s' lacks '%s'", msg, p))
    end
  end
  return T.report(true, name, "[" .. msg:gsub("\n.*", "") .. "]")
end

local x4 = md.zeros(1, 3, 4, 4)
local m23 = md.zeros(2, 3)

T.run("wrong uses", function()
  -- shapes
  err("conv2d channel mismatch names both shapes", function() return md.conv2d(x4, md.zeros(2, 2, 3, 3)) end,
    "conv2d", "1x3x4x4", "2x2x3x3", "channels")
  err("conv2d on a 3-d input", function() return md.conv2d(md.zeros(3, 4, 4), md.zeros(2, 3, 3, 3)) end, "conv2d", "3x4x4")
  err("conv2d kernel larger than the padded input", function() return md.conv2d(md.zeros(1, 1, 2, 2), md.zeros(1, 1, 5, 5)) end,
    "conv2d", "2x2")
  err("conv2d bias of the wrong size", function() return md.conv2d(x4, md.zeros(2, 3, 3, 3), md.zeros(3)) end, "conv2d", "bias")
  err("reshape to a wrong element count", function() return m23:reshape(4, 2) end, "reshape", "4x2", "2x3", "6 elements")
  err("view with two -1", function() return m23:view(-1, -1) end, "reshape")
  err("matmul inner dimensions differ", function() return md.matmul(m23, md.zeros(2, 3)) end, "matmul", "2x3", "inner")
  err("linear with the wrong in_features", function() return md.linear(m23, md.zeros(4, 5)) end, "linear", "2x3", "4x5")
  err("broadcast mismatch in add", function() return m23 + md.zeros(4) end, "2x3", "4")
  err("cat of mismatched shapes", function() return md.cat({ m23, md.zeros(2, 4) }) end, "cat", "2x3", "2x4")
  err("permute with the wrong number of dims", function() return m23:permute(2, 1, 3) end, "permute", "3 dims", "2 dimensions")
  err("narrow past the end", function() return m23:narrow(2, 2, 5) end, "2x3")
  err("split sizes that do not add up", function() return md.split(md.arange(5), { 2, 2 }) end, "split")
  err("batch_norm weight of the wrong size", function() return md.batch_norm(x4, { weight = md.ones(4), training = true }) end,
    "batch_norm", "1x3x4x4")
  err("interpolate of a 3-d input", function() return md.interpolate(md.zeros(3, 4, 4), { size = 8 }) end, "interpolate", "4-d", "3x4x4")
  err("max_pool2d window larger than the input", function() return md.max_pool2d(md.zeros(1, 1, 2, 2), 3) end, "max_pool2d")
  err("sum over a dim that does not exist", function() return m23:sum(3) end, "sum", "out of range")
  -- the core counts dims from 0; messages must name the dim as the Lua user gave it
  err("the message names the dim as the user gave it (1-based)", function() return m23:sum(3) end, "dim 3")
  err("softmax over a dim that does not exist", function() return md.softmax(m23, 5) end, "softmax")

  -- dims are 1-based
  err("sum(0): dims are 1-based", function() return m23:sum(0) end, "1-based")
  err("transpose(0, 1): dims are 1-based", function() return m23:transpose(0, 1) end, "1-based")
  err("size(0): dims are 1-based", function() return m23:size(0) end, "1-based")
  err("cat along dim 0", function() return md.cat({ m23, m23 }, 0) end, "1-based")
  err("size of a missing dim", function() return m23:size(3) end, "dim out of range")

  -- argument types
  err("non-tensor argument", function() return md.relu(3) end, "tensor expected", "number")
  err("non-tensor argument (table)", function() return md.conv2d({}, md.zeros(1)) end, "tensor expected", "table")
  err("tensor op on two numbers", function() return md.add(1, 2) end, "two numbers")
  err("int tensor where a float is needed", function() return md.relu(i64 { 1, 2 }) end, "relu", "float tensor", "integer")
  err("float labels for cross_entropy", function() return md.cross_entropy(m23, tensor { 0, 1 }) end, "cross_entropy")
  err("float labels for one_hot", function() return md.one_hot(tensor { 0, 1 }, 3) end, "one_hot")
  err("ragged nested table", function() return tensor { { 1, 2 }, { 3 } } end, "ragged")
  err("string in a nested table", function() return tensor { 1, "two" } end, "not a number")
  err("option of the wrong type", function() return md.conv2d(x4, md.zeros(2, 3, 3, 3), nil, { stride = "2" }) end,
    "stride", "must be an integer")
  err("boolean option of the wrong type", function() return md.grad(md.zeros(1), { md.zeros(1) }, { create_graph = 1 }) end,
    "create_graph", "boolean")
  err("unknown dtype", function() return md.tensor({ 1 }, { dtype = "float64" }) end, "unknown dtype 'float64'")
  err("unknown reduction", function() return md.mse_loss(m23, m23, "avg") end, "unknown reduction 'avg'")

  -- options tables reject unknown keys
  err("unknown option in conv2d", function() return md.conv2d(x4, md.zeros(2, 3, 3, 3), nil, { strde = 1 }) end,
    "conv2d", "unknown option 'strde'")
  err("unknown option in max_pool2d", function() return md.max_pool2d(x4, { kernel_size = 2, pad = 1 }) end,
    "max_pool2d", "unknown option 'pad'")
  err("max_pool2d without kernel_size", function() return md.max_pool2d(x4, { stride = 2 }) end, "kernel_size is required")
  err("unknown option in grad", function() return md.grad(md.zeros(1), { md.zeros(1) }, { retain = true }) end,
    "grad", "unknown option 'retain'")
  err("unknown option in tensor", function() return md.tensor({ 1 }, { requires_gard = true }) end, "unknown option 'requires_gard'")
  err("unknown option in batch_norm", function() return md.batch_norm(x4, { train = true }) end, "unknown option 'train'")
  err("unknown option in interpolate", function() return md.interpolate(x4, { size = 8, align = true }) end, "unknown option 'align'")
  err("unknown option in backward", function()
    local a = md.zeros(1):requires_grad()
    ;(a * 2):sum():backward({ keep = true })
  end, "unknown option 'keep'")
  err("unknown option in nn.Conv2d", function() return nn.Conv2d(3, 4, 3, { pading = 1 }) end, "Conv2d", "unknown option 'pading'")
  err("unknown option in nn.BatchNorm2d", function() return nn.BatchNorm2d(3, { affin = false }) end, "unknown option 'affin'")
  err("unknown option in SGD", function() return optim.SGD({ md.zeros(1):requires_grad() }, { lr = 1, wd = 0 }) end,
    "SGD", "unknown option 'wd'")
  err("unknown option in Adam", function() return optim.Adam({ md.zeros(1):requires_grad() }, { betas1 = 0.9 }) end,
    "Adam", "unknown option 'betas1'")
  err("SGD without lr", function() return optim.SGD({ md.zeros(1):requires_grad() }, { momentum = 0.9 }) end, "lr", "required")
  err("bad interpolate mode", function() return md.interpolate(x4, { size = 8, mode = "cubic" }) end, "unknown mode 'cubic'")
  err("interpolate without a size", function() return md.interpolate(x4, { mode = "nearest" }) end, "size", "scale_factor")

  -- values
  err("cross_entropy target out of range", function() return md.cross_entropy(m23, i64 { 0, 3 }) end,
    "cross_entropy", "3", "out of")
  err("nll_loss negative target", function() return md.nll_loss(m23, i64 { -1, 0 }) end, "nll_loss", "-1")
  err("gather index out of range", function() return md.gather(m23, 2, i64 { { 0 }, { 7 } }) end, "gather", "7")
  err("one_hot label >= n", function() return md.one_hot(i64 { 0, 5 }, 3) end, "one_hot", "5")
  err("item() on a non-scalar", function() return m23:item() end, "item", "2x3", "6 elements")
  err("index out of range t[99]", function() return m23[99] end, "index 99 out of range", "size 2")
  err("index of a 0-d tensor", function() return tensor(1)[1] end, "0-d")
  err("non-integer index", function() return m23[1.5] end, "integer")
  err("setting an unknown field of a tensor", function() m23.foo = 1 end, "cannot set field 'foo'")
  err(".grad of the wrong shape", function() m23.grad = md.zeros(3, 2) end, "grad", "3x2", "2x3")

  -- autograd
  err("backward on a non-scalar without a gradient", function()
    local a = md.zeros(3):requires_grad()
    ;(a * 2):backward()
  end, "single-element", "shape 3")
  err("grad of an unused input", function()
    local a, b = md.zeros(2):requires_grad(), md.zeros(2):requires_grad()
    return md.grad((a * 2):sum(), { b })
  end, "not used", "allow_unused")
  err("backward twice without retain_graph", function()
    local a = md.ones(2):requires_grad()
    local l = (a * a):sum()
    l:backward()
    l:backward()
  end, "second time", "retain_graph")
  err("grad of a tensor that does not require grad", function() return md.grad(md.ones(1):sum(), { md.ones(1) }) end, "grad")
  err("grad_outputs count mismatch", function()
    local a = md.ones(2):requires_grad()
    return md.grad({ a * 2 }, { a }, { grad_outputs = { md.ones(2), md.ones(2) } })
  end, "2 grad_outputs for 1 outputs")
  err("grad with a non-tensor input", function() return md.grad(md.ones(1), { 3 }) end, "inputs[1] is number, not a tensor")
  err("in-place on a leaf that requires grad", function() md.ones(2):requires_grad():fill_(3) end, "in-place", "requires grad")
  err("in-place add_ on a leaf that requires grad", function()
    local a = md.ones(2):requires_grad()
    a:add_(md.ones(2))
  end, "in-place", "requires grad")
  err("requires_grad on a non-leaf", function()
    local a = md.ones(2):requires_grad()
    return (a * 2):requires_grad(false)
  end, "")
  err("requires_grad on an int64 tensor", function() return i64 { 1 }:requires_grad() end, "")
  err("a hook that errors", function()
    local a = md.ones(2):requires_grad()
    a:register_hook(function() error("no gradients today") end)
    ;(a * 2):sum():backward()
  end, "no gradients today")

  -- files
  err("load of a missing file", function() return md.load("/nonexistent/dir/w.safetensors") end,
    "/nonexistent/dir/w.safetensors", "cannot open")
  err("save into a missing directory", function() md.save("/nonexistent/dir/w.safetensors", { a = m23 }) end,
    "/nonexistent/dir/w.safetensors")

  -- modules
  err("Sequential with a non-module", function() return nn.Sequential(nn.ReLU(), 42) end, "module expected")
  err("module forward with the wrong channels", function() return nn.Conv2d(4, 2, 3)(x4) end, "conv2d", "1x3x4x4")
  err("Linear on the wrong width", function() return nn.Linear(5, 2)(m23) end, "linear", "2x3")
  err("load_state_dict with a mis-shaped key", function() nn.Linear(3, 2):load_state_dict { weight = md.zeros(3, 2), bias = md.zeros(2) } end,
    "weight", "{3, 2}", "{2, 3}")
  err("load_state_dict with a missing key", function() nn.Linear(3, 2):load_state_dict { weight = md.zeros(2, 3) } end,
    "missing", "bias")

  -- a closed tensor
  err("use of a closed tensor", function()
    local t
    do
      local c <close> = md.ones(2)
      t = c
    end
    return t + 1
  end, "closed")
end)

-- the session still works after all of the above
T.run("still working", function()
  local a = md.tensor({ 1, 2 }, { requires_grad = true })
  ;(a * a):sum():backward()
  T.close(a.grad, { 2, 4 }, 0, 0, "autograd works after the errors")
  T.check(md.is_grad_enabled(), "grad mode is on after the errors")
  T.close(md.conv2d(md.ones(1, 1, 3, 3), md.ones(1, 1, 3, 3)), { { { { 9 } } } }, 0, 0, "conv2d works after the errors")
  T.check(T.passed >= 25 + 3, "at least 25 distinct wrong uses checked (" .. T.passed .. " checks)")
end)

T.summary()
