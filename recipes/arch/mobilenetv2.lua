--- MobileNetV2 style (inverted residuals with depthwise 3x3 convolutions,
-- ReLU6), CIFAR stem (stride 1).  Names follow torchvision: features.N,
-- classifier.  mobilenetv2{in_channels=, num_classes=, width=1}
local nn = require "mdoctor.nn"

local function cbr(cin, cout, k, stride, groups)
  return nn.Sequential(nn.Conv2d(cin, cout, k, { stride = stride, padding = (k - 1) // 2, groups = groups or 1, bias = false }),
    nn.BatchNorm2d(cout), nn.ReLU6())
end

local InvertedResidual = nn.Block {
  name = "InvertedResidual",
  init = function(self, cin, cout, stride, expand)
    local hidden = cin * expand
    self.use_res = stride == 1 and cin == cout
    local layers = {}
    if expand ~= 1 then layers[#layers + 1] = cbr(cin, hidden, 1, 1) end
    layers[#layers + 1] = cbr(hidden, hidden, 3, stride, hidden) -- depthwise
    layers[#layers + 1] = nn.Conv2d(hidden, cout, 1, { bias = false })
    layers[#layers + 1] = nn.BatchNorm2d(cout)
    self.conv = nn.Sequential(table.unpack(layers))
  end,
  forward = function(self, x)
    local y = self.conv(x)
    if self.use_res then return x + y end
    return y
  end,
}

-- (expansion, channels, blocks, stride) as the paper; CIFAR variant: the
-- second stage keeps stride 1
local CFG = { { 1, 16, 1, 1 }, { 6, 24, 2, 1 }, { 6, 32, 3, 2 }, { 6, 64, 4, 2 }, { 6, 96, 3, 1 },
  { 6, 160, 3, 2 }, { 6, 320, 1, 1 } }

return function(o)
  o = o or {}
  local cin, k, w = o.in_channels or 3, o.num_classes or 10, o.width or 1
  local function ch(c) return math.max(4, math.floor(c * w + 0.5)) end
  local feats = { cbr(cin, ch(32), 3, 1) }
  local c = ch(32)
  for _, e in ipairs(o.cfg or CFG) do
    local t, cout, n, s = e[1], ch(e[2]), e[3], e[4]
    for j = 1, n do
      feats[#feats + 1] = InvertedResidual(c, cout, j == 1 and s or 1, t)
      c = cout
    end
  end
  local last = ch(1280)
  feats[#feats + 1] = cbr(c, last, 1, 1)
  return nn.Sequential(
    { "features", nn.Sequential(table.unpack(feats)) },
    { "avgpool", nn.AdaptiveAvgPool2d(1) },
    { "flatten", nn.Flatten() },
    { "classifier", nn.Sequential(nn.Dropout(0.2), nn.Linear(last, k)) })
end
