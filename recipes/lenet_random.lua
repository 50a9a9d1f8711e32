--- recipes/lenet_random.lua -- a first recipe: train a LeNet-sized CNN on
-- random 28x28 images whose labels come from a fixed random "teacher" (smooth
-- templates), so there is something to learn and the loss goes down.  No data
-- set needed.
--
--   build/mdoctor recipes/lenet_random.lua [--epochs 3] [--steps 50] [--lr 0.05]
--                                          [--batch 64] [--momentum 0.9] [--seed 0]
--                                          [--test 512] [--threads N] [--quiet]
--
-- Shows a progress line per epoch (on stderr: epoch, batch, loss, accuracy,
-- img/s, ETA), one line per epoch on stdout, and a final summary.
local md = require "mdoctor"
local nn, optim = md.nn, md.optim

local usage = [[
usage: mdoctor recipes/lenet_random.lua [options]
  --epochs N     passes over the training set (3)
  --steps N      batches per epoch; the training set is steps*batch images (50)
  --batch N      images per batch (64)
  --lr X         SGD learning rate (0.05)
  --momentum X   SGD momentum (0.9)
  --seed N       random seed: data, teacher and student (0)
  --test N       held-out images for the final accuracy (512)
  --threads N    core threads (default: all)
  --quiet        no progress line
  -h, --help     this help
]]

-- {====================================================== options
local defaults = { epochs = 3, steps = 50, batch = 64, lr = 0.05, momentum = 0.9, seed = 0, test = 512 }
local integer = { epochs = true, steps = true, batch = true, seed = true, test = true, threads = true }

local function fail(msg)
  io.stderr:write("lenet_random: ", msg, "\n", usage)
  os.exit(1, true)
end

local function parse(argv)
  local o = {}
  for k, v in pairs(defaults) do o[k] = v end
  local i = 1
  while i <= #argv do
    local a = argv[i]
    if a == "-h" or a == "--help" then
      io.stdout:write(usage)
      os.exit(0, true)
    elseif a == "--quiet" then
      o.quiet = true
    else
      local key, val = a:match("^%-%-([%w_]+)=(.*)$") -- --lr=0.1
      if not key then
        key = a:match("^%-%-([%w_]+)$")
        if key then
          i = i + 1
          val = argv[i]
        end
      end
      if not key or not (defaults[key] ~= nil or key == "threads") then fail("unknown option '" .. a .. "'") end
      if val == nil then fail("option --" .. key .. " needs a value") end
      local n = tonumber(val)
      if not n then fail("option --" .. key .. ": a number expected, got '" .. val .. "'") end
      if integer[key] then
        if math.type(n) ~= "integer" and n ~= math.floor(n) then fail("option --" .. key .. ": an integer expected") end
        n = math.tointeger(n)
      end
      o[key] = n
    end
    i = i + 1
  end
  for _, k in ipairs { "epochs", "steps", "batch" } do
    if o[k] < 1 then fail("option --" .. k .. " must be at least 1") end
  end
  if o.test < 0 then fail("option --test must not be negative") end
  if o.lr <= 0 then fail("option --lr must be positive") end
  return o
end
-- }======================================================

local function lenet()
  return nn.Sequential(
    nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2), -- 1x28x28 -> 6x24x24 -> 6x12x12
    nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), -- -> 16x8x8 -> 16x4x4
    nn.Flatten(), -- -> 256
    nn.Linear(256, 120), nn.ReLU(),
    nn.Linear(120, 84), nn.ReLU(),
    nn.Linear(84, 10))
end

--- the teacher: ten smooth random templates (4x4 noise upsampled to 28x28);
-- an image's class is the template it matches best, after standardising
-- each class score over the set (so all ten classes occur).  A random LeNet
-- as teacher gives labels too hard to learn in a few hundred steps.
local function make_teacher()
  local t = md.interpolate(md.randn(10, 1, 4, 4), { size = { 28, 28 }, mode = "bilinear", align_corners = false })
  return t:reshape(10, 28 * 28)
end

local function make_data(teacher, n)
  local x = md.randn(n, 1, 28, 28)
  local y = md.no_grad(function()
    local z = md.linear(x:reshape(n, 28 * 28), teacher) -- n x 10 scores
    z = (z - md.mean(z, 1, true)) / md.sqrt(md.var(z, 1, true) + 1e-6)
    return md.argmax(z, 2)
  end)
  return x, y
end

local function accuracy(logits, y)
  -- md.eq compares float tensors: the class indices go through float (exact below 2^24)
  return md.eq(md.argmax(logits, 2):float(), y:float()):mean():item()
end

local function main(argv)
  local o = parse(argv)
  if o.threads then md.set_num_threads(o.threads) end
  md.manual_seed(o.seed)
  local teacher = make_teacher()
  local ntrain = o.steps * o.batch
  local xtrain, ytrain = make_data(teacher, ntrain)
  local xtest, ytest
  if o.test > 0 then xtest, ytest = make_data(teacher, o.test) end

  local model = lenet() -- a fresh student, its own random start
  local opt = optim.SGD(model, { lr = o.lr, momentum = o.momentum })
  print(string.format("lenet_random: %d parameters, %d training images (%d steps x %d), %d epoch%s, lr %g, momentum %g, seed %d",
    model:num_parameters(), ntrain, o.steps, o.batch, o.epochs, o.epochs == 1 and "" or "s", o.lr, o.momentum, o.seed))

  local t0 = md.now()
  local history = {}
  for epoch = 1, o.epochs do
    model:train()
    local p = md.util.progress { total = o.steps, label = string.format("epoch %d/%d", epoch, o.epochs),
      unit = "img", quiet = o.quiet }
    local sum_loss, sum_acc = 0, 0
    -- a different order of the batches every epoch
    local order = {}
    for s = 1, o.steps do order[s] = s end
    for s = o.steps, 2, -1 do
      local j = math.floor(md.rand(1):item() * s) + 1
      order[s], order[j] = order[j], order[s]
    end
    for s = 1, o.steps do
      local start = (order[s] - 1) * o.batch + 1
      local x, y = xtrain:narrow(1, start, o.batch), ytrain:narrow(1, start, o.batch)
      local logits = model(x)
      local loss = md.cross_entropy(logits, y)
      opt:zero_grad()
      loss:backward()
      opt:step()
      sum_loss = sum_loss + loss:item()
      sum_acc = sum_acc + accuracy(logits:detach(), y)
      p:update(s, o.batch, { loss = sum_loss / s, acc = sum_acc / s })
    end
    local stats = { loss = sum_loss / o.steps, acc = sum_acc / o.steps }
    p:done(stats)
    history[epoch] = stats
    print(string.format("epoch %d/%d  loss %.4f  acc %.2f%%", epoch, o.epochs, stats.loss, 100 * stats.acc))
    io.stdout:flush()
  end
  local el = md.now() - t0

  local test_acc
  if xtest then
    model:eval()
    test_acc = md.no_grad(function() return accuracy(model(xtest), ytest) end)
  end
  local first, last = history[1], history[#history]
  print(string.format("summary: loss %.4f -> %.4f, train acc %.2f%% -> %.2f%%%s, %.1f s, %.0f img/s",
    first.loss, last.loss, 100 * first.acc, 100 * last.acc,
    test_acc and string.format(", held-out acc %.2f%% (%d images, chance 10%%)", 100 * test_acc, o.test) or "",
    el, o.epochs * ntrain / math.max(el, 1e-9)))
  return history, test_acc
end

main(arg or { ... })
