--- LeNet-5 style: two 5x5 convs and three linear layers.
-- lenet{in_channels=1, num_classes=10, input_size=28, width=1}
local nn = require "mdoctor.nn"

return function(o)
  o = o or {}
  local cin, k, size, w = o.in_channels or 1, o.num_classes or 10, o.input_size or 28, o.width or 1
  local c1, c2 = math.max(1, math.floor(6 * w)), math.max(1, math.floor(16 * w))
  local s = ((size - 4) // 2 - 4) // 2
  assert(s >= 1, "lenet: input_size too small")
  return nn.Sequential(
    { "features", nn.Sequential(nn.Conv2d(cin, c1, 5), nn.ReLU(), nn.MaxPool2d(2),
                                nn.Conv2d(c1, c2, 5), nn.ReLU(), nn.MaxPool2d(2)) },
    { "flatten", nn.Flatten() },
    { "classifier", nn.Sequential(nn.Linear(c2 * s * s, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
                                  nn.Linear(84, k)) })
end
