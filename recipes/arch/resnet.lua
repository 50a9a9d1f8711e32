--- ResNet style (BasicBlock, CIFAR stem: 3x3 stride 1, no max pool), with
-- torchvision's names (conv1, bn1, layer1..layer4, fc).
-- resnet{in_channels=, num_classes=, width=1, blocks={2,2,2,2}} ({2,2,2,2} is
-- ResNet-18, {3,4,6,3} ResNet-34).  The model is a Sequential of stages, so
-- the doctor can cut it at any block output ("layer4.1").
local nn = require "mdoctor.nn"

local BasicBlock = nn.Block {
  name = "BasicBlock",
  init = function(self, cin, cout, stride)
    self.conv1 = nn.Conv2d(cin, cout, 3, { stride = stride, padding = 1, bias = false })
    self.bn1 = nn.BatchNorm2d(cout)
    self.conv2 = nn.Conv2d(cout, cout, 3, { padding = 1, bias = false })
    self.bn2 = nn.BatchNorm2d(cout)
    if stride ~= 1 or cin ~= cout then
      self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, { stride = stride, bias = false }), nn.BatchNorm2d(cout))
    end
  end,
  forward = function(self, x)
    local md = require "mdoctor.core"
    local out = md.relu(self.bn1(self.conv1(x)))
    out = self.bn2(self.conv2(out))
    local short = self.downsample and self.downsample(x) or x
    return md.relu(out + short)
  end,
}

return function(o)
  o = o or {}
  local cin, k, w = o.in_channels or 3, o.num_classes or 10, o.width or 1
  local blocks = o.blocks or { 2, 2, 2, 2 }
  local function ch(c) return math.max(4, math.floor(c * w + 0.5)) end
  local stages = {
    { "conv1", nn.Conv2d(cin, ch(64), 3, { padding = 1, bias = false }) },
    { "bn1", nn.BatchNorm2d(ch(64)) },
    { "relu", nn.ReLU() },
  }
  local c = ch(64)
  for i, n in ipairs(blocks) do
    local cout, list = ch(64 * 2 ^ (i - 1)), {}
    for j = 1, n do
      list[#list + 1] = BasicBlock(c, cout, (j == 1 and i > 1) and 2 or 1)
      c = cout
    end
    stages[#stages + 1] = { "layer" .. i, nn.Sequential(table.unpack(list)) }
  end
  stages[#stages + 1] = { "avgpool", nn.AdaptiveAvgPool2d(1) }
  stages[#stages + 1] = { "flatten", nn.Flatten() }
  stages[#stages + 1] = { "fc", nn.Linear(c, k) }
  return nn.Sequential(table.unpack(stages))
end
