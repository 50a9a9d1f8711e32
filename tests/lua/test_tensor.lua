-- tests/lua/test_tensor.lua -- tensors from Lua: creation, operators, methods,
-- indexing, shape plumbing, autograd (incl. double backward against PyTorch
-- and analytic values), the issue's example in the shell and in a stock
-- lua5.4, and flat memory over a 1000-step training loop.
local T = dofile("tests/lua/harness.lua")
local md = require "mdoctor"
local tensor = T.tensor

local function shape_is(t, s) return tostring(t:shape()) == "md.Size{" .. table.concat(s, ", ") .. "}" end

-- {====================================================== creation
T.run('creation', function()
  -- the natural form, without an options table
  local ok, t = pcall(function() return md.tensor { { 1, 2, 3 }, { 4, 5, 6 } } end)
  T.check(ok and md.is_tensor(t), "tensor{...} without options (" .. (ok and "ok" or tostring(t)) .. ")")
  local ok2, s = pcall(function() return md.tensor(2.5) end)
  T.check(ok2 and md.is_tensor(s) and s:dim() == 0, "tensor(number) without options")

  local a = tensor { { 1, 2, 3 }, { 4, 5, 6 } }
  T.check(shape_is(a, { 2, 3 }) and a:dim() == 2 and a:numel() == 6, "nested table -> 2x3")
  T.check(a:size(1) == 2 and a:size(2) == 3 and a:size(-1) == 3, "size(d), size(-1)")
  T.check(#a == 2, "#t is the first dim")
  T.check(a:dtype() == "float32", "default dtype float32")
  T.close(a, { { 1, 2, 3 }, { 4, 5, 6 } }, 0, 0, "nested table values")
  local a3 = tensor { { { 1, 2 }, { 3, 4 } }, { { 5, 6 }, { 7, 8 } }, { { 9, 10 }, { 11, 12 } } }
  T.check(shape_is(a3, { 3, 2, 2 }), "3-level nesting -> 3x2x2")
  T.check(a3[3][2][1] == 11, "t[i][j][k] on a 3-d tensor")
  T.err(function() return tensor { { 1, 2 }, { 3 } } end, "ragged", "ragged nested table")
  T.err(function() return tensor { 1, "x" } end, "not a number", "string entry")

  local i = md.tensor({ 3, -1, 7 }, { dtype = "int64" })
  T.check(i:dtype() == "int64", "dtype int64")
  T.check(math.type(i[1]) == "integer" and i[1] == 3 and i[2] == -1, "int64 entries are Lua integers")
  T.check(math.type(i[1]) == "integer" and math.type(md.tensor(5, { dtype = "int64" }):item()) == "integer", "int64 item is an integer")
  local big = md.tensor({ 2 ^ 40 }, { dtype = "int64" })
  T.check(big[1] == 1 << 40, "int64 keeps 2^40 exactly")
  T.check(i:float():dtype() == "float32" and i:float()[3] == 7.0, ":float() converts")
  T.check(tensor({ 1.7, -2.2 }):long():dtype() == "int64", ":long() converts")
  T.err(function() return md.tensor({ 1 }, { dtype = "float16" }) end, "unknown dtype", "unknown dtype")

  local s = tensor(3.5)
  T.check(s:dim() == 0 and s:numel() == 1 and s:item() == 3.5, "0-d tensor from a number")

  local z = md.zeros(2, 3)
  T.check(shape_is(z, { 2, 3 }), "zeros(2, 3)")
  T.close(z:abs():sum(), 0, 0, 0, "zeros are zero")
  T.check(shape_is(md.zeros { 4, 1, 2 }, { 4, 1, 2 }), "zeros{4, 1, 2} (shape table)")
  T.close(md.ones(3, 2), { { 1, 1 }, { 1, 1 }, { 1, 1 } }, 0, 0, "ones(3, 2)")
  T.close(md.full(2, 2, -1.5), { { -1.5, -1.5 }, { -1.5, -1.5 } }, 0, 0, "full(2, 2, v)")
  T.close(md.full({ 3 }, 4), { 4, 4, 4 }, 0, 0, "full({3}, v)")
  T.close(md.arange(5), { 0, 1, 2, 3, 4 }, 0, 0, "arange(5) = 0..4")
  T.close(md.zeros_like(a), md.zeros(2, 3), 0, 0, "zeros_like")
  T.close(md.ones_like(a), md.ones(2, 3), 0, 0, "ones_like")

  md.manual_seed(42)
  local r1 = md.randn(10000)
  md.manual_seed(42)
  local r2 = md.randn(10000)
  T.close(r1, r2, 0, 0, "manual_seed makes randn reproducible")
  local mean = r1:mean():item()
  local std = math.sqrt(((r1 - mean) * (r1 - mean)):mean():item())
  T.check(math.abs(mean) < 0.05 and math.abs(std - 1) < 0.05, string.format("randn mean %.3f std %.3f", mean, std))
  local u = md.rand(10000)
  local umin, umax = -md.max(-u):item(), md.max(u):item()
  T.check(umin >= 0 and umax < 1 and math.abs(u:mean():item() - 0.5) < 0.02,
    string.format("rand in [0,1): min %.4f max %.4f mean %.4f", umin, umax, u:mean():item()))
  T.check(shape_is(md.randn(2, 3, 4), { 2, 3, 4 }) and shape_is(md.rand(5, 1), { 5, 1 }), "randn/rand shapes")
end)
-- }======================================================

-- {====================================================== operators
T.run('operators', function()
  local a = tensor { { 1, 2, 3 }, { 4, 5, 6 } }
  local b = tensor { { 6, 5, 4 }, { 3, 2, 1 } }
  T.close(a + b, { { 7, 7, 7 }, { 7, 7, 7 } }, 0, 0, "t + t")
  T.close(a - b, { { -5, -3, -1 }, { 1, 3, 5 } }, 0, 0, "t - t")
  T.close(a * b, { { 6, 10, 12 }, { 12, 10, 6 } }, 0, 0, "t * t")
  T.close(a / b, { { 1 / 6, 2 / 5, 3 / 4 }, { 4 / 3, 5 / 2, 6 } }, 1e-6, 0, "t / t")
  T.close(-a, { { -1, -2, -3 }, { -4, -5, -6 } }, 0, 0, "-t")
  T.close(a + 1, { { 2, 3, 4 }, { 5, 6, 7 } }, 0, 0, "t + n")
  T.close(1 + a, { { 2, 3, 4 }, { 5, 6, 7 } }, 0, 0, "n + t")
  T.close(a - 1, { { 0, 1, 2 }, { 3, 4, 5 } }, 0, 0, "t - n")
  T.close(10 - a, { { 9, 8, 7 }, { 6, 5, 4 } }, 0, 0, "n - t")
  T.close(a * 2, { { 2, 4, 6 }, { 8, 10, 12 } }, 0, 0, "t * n")
  T.close(2 * a, { { 2, 4, 6 }, { 8, 10, 12 } }, 0, 0, "n * t")
  T.close(a / 4, { { 0.25, 0.5, 0.75 }, { 1, 1.25, 1.5 } }, 0, 0, "t / n")
  T.close(6 / a, { { 6, 3, 2 }, { 1.5, 1.2, 1 } }, 1e-6, 0, "n / t")
  -- broadcasting
  local row = tensor { 10, 20, 30 }
  local col = tensor { { 1 }, { 2 } }
  T.close(a + row, { { 11, 22, 33 }, { 14, 25, 36 } }, 0, 0, "(2,3) + (3) broadcasts")
  T.close(a * col, { { 1, 2, 3 }, { 8, 10, 12 } }, 0, 0, "(2,3) * (2,1) broadcasts")
  T.close(col - row, { { -9, -19, -29 }, { -8, -18, -28 } }, 0, 0, "(2,1) - (3) -> (2,3)")
  T.close(tensor(2) * a, 2 * a, 0, 0, "0-d tensor * t")
  T.err(function() return a + tensor { 1, 2 } end, "", "(2,3) + (2) does not broadcast")
  -- gradients through broadcasting reduce back to the input's shape
  local x = md.tensor({ { 1, 2, 3 }, { 4, 5, 6 } }, { requires_grad = true })
  local r = md.tensor({ 1, 2, 3 }, { requires_grad = true })
  ;((x * r + r) / 2):sum():backward()
  T.close(x.grad, { { 0.5, 1, 1.5 }, { 0.5, 1, 1.5 } }, 1e-6, 0, "grad of x in (x*r+r)/2")
  T.close(r.grad, { 3.5, 4.5, 5.5 }, 1e-6, 0, "grad of broadcast r sums rows")
  T.check(shape_is(r.grad, { 3 }), "broadcast grad keeps r's shape")
end)
-- }======================================================

-- {====================================================== methods
T.run('methods', function()
  local x = md.arange(24):reshape(2, 3, 4)
  T.check(shape_is(x, { 2, 3, 4 }), "reshape(2, 3, 4)")
  T.check(shape_is(x:view(6, 4), { 6, 4 }), "view(6, 4)")
  T.check(shape_is(x:reshape(-1), { 24 }), "reshape(-1)")
  T.check(shape_is(x:reshape { 4, -1 }, { 4, 6 }), "reshape{4, -1}")
  T.close(x:sum(), 276, 0, 0, "sum() of 0..23")
  T.check(x:sum():dim() == 0, "sum() is 0-d")
  T.close(x:sum(3), { { 6, 22, 38 }, { 54, 70, 86 } }, 0, 0, "sum(3)")
  T.check(shape_is(x:sum(3, true), { 2, 3, 1 }), "sum(3, true) keeps the dim")
  T.check(shape_is(x:sum({ 1, 3 }), { 3 }), "sum({1, 3})")
  T.close(x:sum({ 1, 3 }), { 60, 92, 124 }, 0, 0, "sum({1, 3}) values")
  T.check(shape_is(x:sum({ 1, 3 }, true), { 1, 3, 1 }), "sum({1, 3}, true)")
  T.close(x:sum(-1), x:sum(3), 0, 0, "sum(-1) == sum(3)")
  T.close(x:mean(), 11.5, 0, 0, "mean()")
  T.close(x:mean(2), { { 4, 5, 6, 7 }, { 16, 17, 18, 19 } }, 0, 0, "mean(2)")
  T.check(shape_is(x:mean(1, true), { 1, 3, 4 }), "mean(1, true)")
  T.close(tensor({ -1.5, 2, -3 }):abs(), { 1.5, 2, 3 }, 0, 0, "abs")
  -- permute / transpose / narrow are views with the right element order
  local p = x:permute(3, 1, 2)
  T.check(shape_is(p, { 4, 2, 3 }), "permute(3, 1, 2) shape")
  local xt, pt = x:totable(), p:totable()
  local okp = true
  for i = 1, 2 do for j = 1, 3 do for k = 1, 4 do
    if pt[k][i][j] ~= xt[i][j][k] then okp = false end
  end end end
  T.check(okp, "permute moves elements: p[k][i][j] == x[i][j][k]")
  T.check(shape_is(x:permute { 2, 3, 1 }, { 3, 4, 2 }), "permute{...} (table)")
  local tr = x:transpose(1, 3)
  T.check(shape_is(tr, { 4, 3, 2 }) and tr[4][3][2] == x[2][3][4], "transpose(1, 3)")
  T.check(x:transpose(-1, -2)[2][3][1] == x[2][1][3], "transpose(-1, -2)")
  local n = x:narrow(3, 2, 2)
  T.check(shape_is(n, { 2, 3, 2 }), "narrow(3, 2, 2) shape")
  T.close(n[1][1], { 1, 2 }, 0, 0, "narrow start is 1-based")
  T.close(n:contiguous():reshape(-1), { 1, 2, 5, 6, 9, 10, 13, 14, 17, 18, 21, 22 }, 0, 0, "narrow values")
  T.close(tr:reshape(-1):narrow(1, 1, 4), { 0, 12, 4, 16 }, 0, 0, "reshape of a non-contiguous view copies in order")
  -- indexing
  T.check(md.is_tensor(x[2]) and shape_is(x[2], { 3, 4 }), "t[i] of a 3-d tensor is a 2-d tensor")
  T.check(x[2][3][4] == 23 and x[-1][-1][-1] == 23 and x[1][1][1] == 0, "t[i][j][k], negative indices")
  local v = tensor { 5, 6, 7 }
  T.check(type(v[2]) == "number" and v[2] == 6, "t[i] of a 1-d tensor is a number")
  T.err(function() return v[4] end, "out of range", "t[4] of a 3-vector")
  T.err(function() return v[0] end, "out of range", "t[0]")
  -- item / totable / shape / size / dim / numel
  T.check(tensor({ { 7.25 } }):item() == 7.25, "item of a 1x1")
  local tt = tensor({ { 1, 2 }, { 3, 4 } }):totable()
  T.check(type(tt) == "table" and #tt == 2 and tt[2][1] == 3 and tt[1][2] == 2, "totable")
  T.check(tensor(5):totable() == 5, "totable of a 0-d tensor is a number")
  local sh = x:shape()
  T.check(sh[1] == 2 and sh[2] == 3 and sh[3] == 4 and #sh == 3, "shape() is a list")
  T.check(x:size()[3] == 4 and x:dim() == 3 and x:numel() == 24, "size()/dim()/numel()")
  T.check(tostring(sh) == "md.Size{2, 3, 4}", "tostring(shape) " .. tostring(sh))
  -- tostring is readable: shape, dtype, values or a summary
  local s1 = tostring(tensor { { 1, 2 }, { 3, 4 } })
  T.check(s1:find("2x2", 1, true) and s1:find("float32", 1, true) and s1:find("4", 1, true), "tostring small: " .. s1:gsub("\n", " | "))
  local s2 = tostring(md.zeros(3, 40, 5))
  T.check(s2:find("3x40x5", 1, true) and s2:find("mean", 1, true), "tostring large: " .. s2:gsub("\n", " | "))
  local s3 = tostring(md.tensor({ 1, 2 }, { requires_grad = true }) * 2)
  T.check(s3:find("grad_fn", 1, true) ~= nil, "tostring shows grad_fn: " .. s3:gsub("\n", " | "))
  T.check(tostring(md.tensor({ 1 }, { dtype = "int64" })):find("int64", 1, true) ~= nil, "tostring shows int64")
end)
-- }======================================================

-- {====================================================== cat, split, chunk, gather, one_hot, max
T.run('cat, split, chunk, gather, one_hot, max', function()
  local a, b = tensor { { 1, 2 }, { 3, 4 } }, tensor { { 5, 6 } }
  T.close(md.cat({ a, b }), { { 1, 2 }, { 3, 4 }, { 5, 6 } }, 0, 0, "cat along dim 1 (default)")
  T.close(md.cat({ a, tensor { { 7 }, { 8 } } }, 2), { { 1, 2, 7 }, { 3, 4, 8 } }, 0, 0, "cat along dim 2")
  T.close(md.cat({ a, a }, -1), { { 1, 2, 1, 2 }, { 3, 4, 3, 4 } }, 0, 0, "cat along dim -1")
  T.err(function() return md.cat({ a, b }, 2) end, "cat", "cat of mismatched shapes")
  local r = md.arange(7)
  local sp = md.split(r, 3)
  T.check(#sp == 3 and sp[3]:numel() == 1, "split(7 elements, 3) -> 3, 3, 1")
  T.close(sp[2], { 3, 4, 5 }, 0, 0, "split piece 2")
  local sp2 = md.split(md.arange(12):reshape(3, 4), { 1, 3 }, 2)
  T.check(#sp2 == 2 and shape_is(sp2[1], { 3, 1 }) and shape_is(sp2[2], { 3, 3 }), "split sizes {1,3} on dim 2")
  T.close(sp2[2][3], { 9, 10, 11 }, 0, 0, "split piece values")
  local ch = md.chunk(md.arange(6), 3)
  T.check(#ch == 3 and ch[1]:numel() == 2, "chunk(6 elements, 3)")
  T.close(ch[3], { 4, 5 }, 0, 0, "chunk piece 3")
  T.close(md.cat(md.chunk(md.arange(10):reshape(2, 5), 2, 2), 2), md.arange(10):reshape(2, 5), 0, 0, "cat(chunk(x)) == x")

  local x = tensor { { 1, 2, 3 }, { 4, 5, 6 } }
  local idx = md.tensor({ { 2, 0 }, { 1, 1 } }, { dtype = "int64" })
  T.close(md.gather(x, 2, idx), { { 3, 1 }, { 5, 5 } }, 0, 0, "gather dim 2 (0-based indices)")
  T.close(x:gather(1, md.tensor({ { 1, 0, 1 } }, { dtype = "int64" })), { { 4, 2, 6 } }, 0, 0, "gather dim 1")
  local xg = md.tensor({ { 1, 2, 3 }, { 4, 5, 6 } }, { requires_grad = true })
  md.gather(xg, 2, idx):sum():backward()
  T.close(xg.grad, { { 1, 0, 1 }, { 0, 2, 0 } }, 0, 0, "gather backward scatters (adds repeats)")
  T.err(function() return md.gather(x, 2, md.tensor({ { 3 }, { 0 } }, { dtype = "int64" })) end, "", "gather index out of range")

  local oh = md.one_hot(md.tensor({ 0, 2, 1 }, { dtype = "int64" }), 4)
  T.close(oh, { { 1, 0, 0, 0 }, { 0, 0, 1, 0 }, { 0, 1, 0, 0 } }, 0, 0, "one_hot")
  T.check(oh:dtype() == "float32", "one_hot is float")
  T.err(function() return md.one_hot(md.tensor({ 4 }, { dtype = "int64" }), 4) end, "", "one_hot label >= n")

  local m = tensor { { 1, 9, 3 }, { 8, 2, 7 } }
  T.close(md.max(m), 9, 0, 0, "max() over everything")
  local vals, ids = m:max(2)
  T.close(vals, { 9, 8 }, 0, 0, "max(2) values")
  T.check(ids:dtype() == "int64" and ids[1] == 1 and ids[2] == 0, "max(2) indices are 0-based int64")
  local v1, i1 = md.max(m, 1, true)
  T.check(shape_is(v1, { 1, 3 }) and shape_is(i1, { 1, 3 }), "max(1, keepdim)")
  T.close(i1:float(), { { 1, 0, 1 } }, 0, 0, "max(1) indices")
  T.close(md.argmax(m, 2):float(), { 1, 0 }, 0, 0, "argmax(2)")
  T.close(m:argmax(-1):float(), { 1, 0 }, 0, 0, "argmax(-1)")
  local mg = md.tensor({ { 1, 9, 3 }, { 8, 2, 7 } }, { requires_grad = true })
  md.max(mg, 2):sum():backward()
  T.close(mg.grad, { { 0, 1, 0 }, { 1, 0, 0 } }, 0, 0, "max backward routes to the argmax")
end)
-- }======================================================

-- {====================================================== autograd
T.run('autograd', function()
  -- backward into .grad, accumulation, zero_grad
  local x = md.tensor({ 1, 2, 3 }, { requires_grad = true })
  T.check(x:is_leaf() and x.grad == nil, "a fresh leaf has no grad")
  local y = (x * x * x):sum()
  T.check(y:grad_fn() ~= nil and not y:is_leaf(), "result has a grad_fn")
  y:backward()
  T.close(x.grad, { 3, 12, 27 }, 1e-6, 0, "backward: d sum(x^3) = 3x^2")
  ;(x * 2):sum():backward()
  T.close(x.grad, { 5, 14, 29 }, 1e-6, 0, "backward accumulates into .grad")
  x:zero_grad()
  T.check(x.grad == nil, "zero_grad drops .grad")
  x.grad = md.ones(3)
  T.close(x.grad, { 1, 1, 1 }, 0, 0, ".grad can be set")
  T.err(function() x.grad = md.ones(2) end, "shape", ".grad of a wrong shape")
  x.grad = nil
  T.check(x.grad == nil, ".grad = nil clears")
  -- backward with an explicit gradient for a non-scalar
  local v = x * 3
  v:backward(tensor { 1, 0.5, 2 })
  T.close(x.grad, { 3, 1.5, 6 }, 1e-6, 0, "backward(grad_output)")
  x.grad = nil

  -- md.grad, first order
  local a = md.tensor({ 0.5, -1, 2 }, { requires_grad = true })
  local b = md.tensor({ 3, 1, -2 }, { requires_grad = true })
  local gs = md.grad((a * b + a:exp()):sum(), { a, b })
  T.close(gs[1], { 3 + math.exp(0.5), 1 + math.exp(-1), -2 + math.exp(2) }, 1e-5, 0, "grad wrt a")
  T.close(gs[2], { 0.5, -1, 2 }, 1e-6, 0, "grad wrt b")
  T.check(a.grad == nil and b.grad == nil, "md.grad does not touch .grad")
  local go = md.grad(a * 2, { a }, { grad_outputs = { tensor { 1, 2, 3 } } })[1]
  T.close(go, { 2, 4, 6 }, 1e-6, 0, "grad with grad_outputs")
  local c = md.tensor({ 1 }, { requires_grad = true })
  local gu = md.grad((a * 2):sum(), { a, c }, { allow_unused = true })
  T.check(gu[2] == false and md.is_tensor(gu[1]), "allow_unused gives false for an unused input")
  -- retain_graph lets a graph be used twice
  local q = (a * a):sum()
  local g1 = md.grad(q, { a }, { retain_graph = true })[1]
  local g2 = md.grad(q, { a })[1]
  T.close(g1, g2, 0, 0, "retain_graph: two passes agree")

  -- double backward, analytic: f = sum(x^3), g = 3x^2, d sum(g)/dx = 6x
  local xs = { 0.5, -1.5, 2 }
  local x2 = md.tensor(xs, { requires_grad = true })
  local g = md.grad((x2 * x2 * x2):sum(), { x2 }, { create_graph = true })[1]
  T.check(g:grad_fn() ~= nil, "create_graph: the gradient has a grad_fn")
  T.close(g, { 0.75, 6.75, 12 }, 1e-6, 0, "g = 3x^2")
  local gg = md.grad(g:sum(), { x2 })[1]
  T.close(gg, { 3, -9, 12 }, 1e-6, 0, "double backward: d sum(3x^2) = 6x")
  -- tanh: g = 1 - tanh^2, d g/dx = -2 tanh (1 - tanh^2)
  local x3 = md.tensor(xs, { requires_grad = true })
  local gt = md.grad(md.tanh(x3):sum(), { x3 }, { create_graph = true })[1]
  local ggt = md.grad(gt:sum(), { x3 })[1]
  local want = {}
  for i, v0 in ipairs(xs) do local th = math.tanh(v0) want[i] = -2 * th * (1 - th * th) end
  T.close(ggt, want, 1e-5, 1e-6, "double backward of tanh is -2 tanh (1 - tanh^2)")
  -- third order: d^3 sum(x^4) = 24x
  local x4 = md.tensor(xs, { requires_grad = true })
  local d1 = md.grad((x4 * x4 * x4 * x4):sum(), { x4 }, { create_graph = true })[1]
  local d2 = md.grad(d1:sum(), { x4 }, { create_graph = true })[1]
  local d3 = md.grad(d2:sum(), { x4 })[1]
  T.close(d3, { 12, -36, 48 }, 1e-5, 0, "third order: 24x")
  -- backward with create_graph makes .grad differentiable
  local x5 = md.tensor(xs, { requires_grad = true })
  ;(x5 * x5 * x5):sum():backward({ create_graph = true })
  T.check(x5.grad:grad_fn() ~= nil, "backward{create_graph=true}: .grad has a grad_fn")
  local gg5 = md.grad(x5.grad:sum(), { x5 })[1]
  T.close(gg5, { 3, -9, 12 }, 1e-6, 0, "grad of .grad after create_graph backward")

  -- no_grad
  local w = md.tensor({ 1, 2 }, { requires_grad = true })
  local r, inside = md.no_grad(function(k) return w * k, md.is_grad_enabled() end, 3)
  T.check(inside == false and md.is_grad_enabled(), "no_grad turns grad mode off and back on")
  T.check(r:grad_fn() == nil, "no_grad: results record nothing")
  T.close(r, { 3, 6 }, 0, 0, "no_grad passes arguments and returns results")
  pcall(md.no_grad, function() error("boom") end)
  T.check(md.is_grad_enabled(), "no_grad restores grad mode after an error")
  T.err(function() md.no_grad(function() error("inner failure") end) end, "inner failure", "no_grad re-raises")
  local prev = md.set_grad_enabled(false)
  T.check(prev == true and (w * 2):grad_fn() == nil, "set_grad_enabled(false)")
  md.set_grad_enabled(true)
  T.check((w * 2):grad_fn() ~= nil, "set_grad_enabled(true)")
  -- detach
  local dx = (w * 2):detach()
  T.check(dx:grad_fn() == nil and dx:is_leaf(), "detach cuts the graph")

  -- register_hook: reads and replaces the gradient
  local h = md.tensor({ 1, 2, 3 }, { requires_grad = true })
  local seen
  md.register_hook(h, function(gr) seen = gr:clone() return gr * 10 end)
  ;(h * h):sum():backward()
  T.close(seen, { 2, 4, 6 }, 0, 0, "hook sees the gradient")
  T.close(h.grad, { 20, 40, 60 }, 0, 0, "hook's return replaces the gradient")
  local mid = md.tensor({ 1, 2 }, { requires_grad = true })
  local inner = mid * 3
  local count = 0
  inner:register_hook(function(gr) count = count + 1 T.close(gr, { 2, 4 }, 0, 0, "hook on a non-leaf sees d/d inner") end)
  ;(inner * inner / 3):sum():backward()
  T.check(count == 1, "non-leaf hook ran once")
  T.close(mid.grad, { 6, 12 }, 1e-6, 0, "non-leaf hook returning nil keeps the gradient")
  local bad = md.tensor({ 1 }, { requires_grad = true })
  bad:register_hook(function() error("hook says no") end)
  T.err(function() (bad * 2):sum():backward() end, "hook says no", "an error in a hook fails backward")
  local bad2 = md.tensor({ 1 }, { requires_grad = true })
  bad2:register_hook(function() return 42 end)
  T.err(function() (bad2 * 2):sum():backward() end, "hook", "a hook returning a number fails backward")
end)
-- }======================================================

-- {====================================================== the issue's example vs PyTorch
local EXAMPLE = [[
local md = require "mdoctor"; md.manual_seed(0)
local x = md.randn(2, 3, 8, 8); local w = md.randn(4, 3, 3, 3):requires_grad()
local y = md.F.conv2d(x, w, nil, {stride = 1, padding = 1})
local g = md.grad(md.F.relu(y):sum(), {w}, {create_graph = true})[1]
local gw = md.grad((g * g):sum(), {w})[1]
]]
T.run("the issue's example vs PyTorch", function()
  -- verbatim (md's own random numbers): it runs, g is sensible, gw is zero
  local f = assert(load(EXAMPLE .. "return x, w, g, gw", "=example"))
  local ok, x, w, g, gw = pcall(f)
  T.check(ok, "the example runs verbatim" .. (ok and "" or (": " .. tostring(x))))
  if ok then
    T.check(shape_is(g, { 4, 3, 3, 3 }) and shape_is(gw, { 4, 3, 3, 3 }), "example: g and gw have w's shape")
    T.check(g:abs():sum():item() > 0 and g:grad_fn() ~= nil, "example: g is non-zero and differentiable")
    T.close(gw, md.zeros(4, 3, 3, 3), 0, 0, "example: gw is zero (relu is piecewise linear)")
    -- g is conv2d's weight gradient with the relu mask: check it independently
    local mask = md.gt(md.F.conv2d(x, w:detach(), nil, { padding = 1 }), 0)
    local gref = md.grad((md.F.conv2d(x, w, nil, { padding = 1 }) * mask):sum(), { w })[1]
    T.close(g, gref, 1e-5, 1e-5, "example: g = d sum(mask * conv) / dw")
  end

  -- with PyTorch's x and w
  local fx = md.load(T.fixture("lua_example.safetensors"))
  local x, w0 = fx.x, fx.w
  local w = w0:clone():requires_grad()
  T.close(md.F.conv2d(x, w, nil, { stride = 1, padding = 1 }), fx.y, 1e-4, 1e-4, "example vs torch: y")
  for _, act in ipairs { "relu", "tanh", "silu" } do
    local y = md.F.conv2d(x, w, nil, { stride = 1, padding = 1 })
    local g = md.grad(md.F[act](y):sum(), { w }, { create_graph = true })[1]
    local gw = md.grad((g * g):sum(), { w })[1]
    local scale = md.max(fx["gw_" .. act]:abs()):item()
    T.close(g, fx["g_" .. act], 1e-4, 1e-4, "example vs torch (" .. act .. "): g")
    T.close(gw, fx["gw_" .. act], 1e-4, 1e-5 * math.max(1, scale), "example vs torch (" .. act .. "): gw")
    if act ~= "relu" then T.check(scale > 1, act .. ": the reference gw is not trivial") end
  end

  -- the same in a stock lua5.4 with the module from build/lua
  local have = os.execute("command -v lua5.4 >/dev/null 2>&1")
  if not have then
    print("note: lua5.4 not found; the stock-interpreter check is skipped")
  else
    local path = T.tmpdir() .. "/example.lua"
    local f = assert(io.open(path, "w"))
    f:write(EXAMPLE, [[
print("g", g:shape(), g:abs():sum():item(), "gw", gw:abs():sum():item())
local fx = md.load("tests/fixtures/lua_example.safetensors")
local w2 = fx.w:clone():requires_grad()
local y2 = md.F.conv2d(fx.x, w2, nil, {stride = 1, padding = 1})
local g2 = md.grad(md.F.tanh(y2):sum(), {w2}, {create_graph = true})[1]
local gw2 = md.grad((g2 * g2):sum(), {w2})[1]
print("tanh", md.max((g2 - fx.g_tanh):abs()):item(), md.max((gw2 - fx.gw_tanh):abs()):item())
print("DONE", package.loaded["mdoctor.core"] and "core loaded")
]])
    f:close()
    local p = io.popen("LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH='build/lua/?.so;;' lua5.4 " .. path .. " 2>&1")
    local out = p:read("a")
    local okrun, how, code = p:close()
    T.check(okrun and code == 0, "stock lua5.4 runs the example (exit " .. tostring(how) .. " " .. tostring(code) .. ")")
    T.check(out:find("DONE\tcore loaded", 1, true) ~= nil, "stock lua5.4 output complete: " .. out:gsub("\n", " | "))
    T.check(out:find("g\tmd.Size{4, 3, 3, 3}", 1, true) ~= nil, "stock lua5.4: g has shape 4x3x3x3")
    local gwsum = tonumber(out:match("gw\t(%S+)"))
    T.check(gwsum == 0, "stock lua5.4: relu gw is zero")
    local e1, e2 = out:match("tanh\t(%S+)\t(%S+)")
    e1, e2 = tonumber(e1), tonumber(e2)
    T.check(e1 and e2 and e1 < 1e-3 and e2 < 1e-2, "stock lua5.4: tanh g, gw match torch (maxdiff " .. tostring(e1) .. ", " .. tostring(e2) .. ")")
  end
end)
-- }======================================================

-- {====================================================== memory stays flat in a training loop
T.run('memory stays flat in a training loop', function()
  local nn, optim = md.nn, md.optim
  -- one thread: the loop is tiny, and spinning OpenMP workers on a busy
  -- machine would only make the timing erratic
  local threads = md.get_num_threads()
  md.set_num_threads(1)
  md.manual_seed(1)
  local net = nn.Sequential(nn.Conv2d(1, 4, 3, { padding = 1 }), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
    nn.Linear(4 * 6 * 6, 10))
  local opt = optim.SGD(net, { lr = 0.05, momentum = 0.9 })
  local x = md.randn(16, 1, 12, 12)
  local y = md.randint(0, 10, 16)
  collectgarbage()
  local bytes0, alive0 = md.bytes_in_use(), md.tensors_alive()
  local rss100, bytes100, maxbytes, first, last = 0, 0, 0, nil, nil
  local t0 = md.now()
  for step = 1, 1000 do
    local loss = md.F.cross_entropy(net(x), y)
    opt:zero_grad()
    loss:backward()
    opt:step()
    local b = md.bytes_in_use()
    if b > maxbytes then maxbytes = b end
    if step == 1 then first = loss:item() end
    if step == 100 then rss100, bytes100 = T.rss(), b end
    if step == 1000 then last = loss:item() end
  end
  local rss1000 = T.rss()
  local dt = md.now() - t0
  md.set_num_threads(threads)
  T.check(last < first * 0.5, string.format("training lowers the loss (%.3f -> %.3f)", first, last))
  local growth = (rss1000 - rss100) / 2 ^ 20
  -- the collector is driven by the core's byte count (lbind.c mdL_gccheck),
  -- so garbage must not pile up between steps
  if os.getenv("ASAN_OPTIONS") then
    -- AddressSanitizer keeps freed blocks in quarantine (256 MB by default), so
    -- resident memory is not the program's; md.bytes_in_use() above still is
    print(string.format("note: RSS growth %.1f MB not checked under ASan", growth))
  else
    T.check(growth < 20, string.format("RSS growth from step 100 to 1000: %.1f MB (< 20)", growth))
  end
  T.check(maxbytes < 80 * 2 ^ 20, string.format("core bytes in use stay bounded: max %.1f MB", maxbytes / 2 ^ 20))
  -- speed is measured in benchmarks, never asserted here
  print(string.format("note: 1000 steps in %.2f s", dt))
  -- nothing leaks: once the garbage is collected only the last gradients
  -- and the momentum buffers (one each per parameter) are new
  collectgarbage()
  collectgarbage()
  local leaked, extra = md.bytes_in_use() - bytes0, md.tensors_alive() - alive0
  T.check(leaked <= 2 * (4 * 9 + 4 + 144 * 10 + 10) * 4 and extra <= 8,
    string.format("after collectgarbage: %d bytes and %d tensors more than before the loop", leaked, extra))
end)
-- }======================================================

T.cleanup()
T.summary()
