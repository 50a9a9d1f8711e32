--- VGG-16 style (3x3 conv + BN + ReLU stages, max pooling), torchvision names
-- (features.N, classifier).  vgg{in_channels=, num_classes=, input_size=, width=1, cfg=}
-- width scales every stage (0.25 trains on a 2-core CPU).  A pool is skipped
-- when it would take the map below 2x2 (28x28: 14, 7, 3, then the last two
-- stages stay at 3x3; 32x32 ends at 2x2 as CIFAR's VGG-16), so the deepest
-- layers keep a spatial map for the space-wise constraint; an adaptive
-- average pool feeds the classifier.
local nn = require "mdoctor.nn"

local VGG16 = { 64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M" }

return function(o)
  o = o or {}
  local cin, k, size, w = o.in_channels or 3, o.num_classes or 10, o.input_size or 32, o.width or 1
  local layers, c, s = {}, cin, size
  for _, v in ipairs(o.cfg or VGG16) do
    if v == "M" then
      if s >= 4 then
        layers[#layers + 1] = nn.MaxPool2d(2)
        s = s // 2
      end
    else
      local cout = math.max(4, math.floor(v * w + 0.5))
      layers[#layers + 1] = nn.Conv2d(c, cout, 3, { padding = 1 })
      layers[#layers + 1] = nn.BatchNorm2d(cout)
      layers[#layers + 1] = nn.ReLU()
      c = cout
    end
  end
  return nn.Sequential(
    { "features", nn.Sequential(table.unpack(layers)) },
    { "avgpool", nn.AdaptiveAvgPool2d(1) },
    { "flatten", nn.Flatten() },
    { "classifier", nn.Linear(c, k) })
end
