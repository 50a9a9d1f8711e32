--- mdoctor: the Lua face of the core.  `local md = require "mdoctor"`.
-- md.* holds every core function (tensors, ops, autograd, save/load), md.F the
-- functional ops by PyTorch's names, md.nn the modules, md.optim the
-- optimisers; md.who() and md.time() help in the REPL.
local core = require "mdoctor.core"

local md = {}
for k, v in pairs(core) do md[k] = v end

-- functional namespace, as torch.nn.functional
md.F = {}
for _, k in ipairs {
  "conv2d", "linear", "batch_norm", "relu", "relu6", "leaky_relu", "sigmoid", "tanh", "silu",
  "hardsigmoid", "hardswish", "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d",
  "adaptive_max_pool2d", "dropout", "softmax", "log_softmax", "nll_loss", "cross_entropy",
  "mse_loss", "interpolate", "pad", "one_hot",
} do md.F[k] = core[k] end

--- the modules that need md itself load lazily, so `require "mdoctor"` stays cheap
setmetatable(md, {
  __index = function(t, k)
    if k == "nn" or k == "optim" or k == "data" or k == "util" then
      local m = require("mdoctor." .. k)
      rawset(t, k, m)
      return m
    end
  end,
})

--- md.who([tbl]): the tensors and modules among the globals (or tbl), with sizes
function md.who(tbl)
  tbl = tbl or _G
  local names = {}
  for k, v in pairs(tbl) do
    if type(k) == "string" and (core.is_tensor(v) or (type(v) == "table" and v._is_module)) then
      names[#names + 1] = k
    end
  end
  table.sort(names)
  for _, k in ipairs(names) do
    local v = tbl[k]
    if core.is_tensor(v) then
      print(string.format("  %-16s %-22s %s%s", k, tostring(v:shape()), v:dtype(),
        v:grad_fn() and (" grad_fn=" .. v:grad_fn()) or ""))
    else
      print(string.format("  %-16s %s (%d parameters)", k, v._name or "Module", v:num_parameters()))
    end
  end
  print(string.format("  core memory: %.1f MB in %d tensors", core.bytes_in_use() / 2 ^ 20, core.tensors_alive()))
end

--- md.time(f, ...) runs f and prints how long it took; returns f's results
function md.time(f, ...)
  local t0 = os.clock()
  local w0 = core.now()
  local r = table.pack(f(...))
  io.stderr:write(string.format("time: %.3f s wall, %.3f s cpu\n", core.now() - w0, os.clock() - t0))
  return table.unpack(r, 1, r.n)
end

return md
