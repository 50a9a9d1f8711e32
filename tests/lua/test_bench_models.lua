--- tests/lua/test_bench_models.lua -- the whole-model benchmark's harness
-- (bench/models.lua, bench/run_models.lua): its statistics and thread check
-- against hand-worked cases, and the recipes/arch models against the layout
-- PyTorch builds in bench/torch_models.py (signatures recorded from
-- `/usr/bin/python3 bench/torch_models.py --model M --arch`), so a change of
-- an architecture that torch_models.py does not follow shows here.
local T = dofile("tests/lua/harness.lua")
local bm = dofile("bench/models.lua")
local rm = dofile("bench/run_models.lua")

-- {====================================================== run_models helpers
T.check(rm.median({ 3, 1, 2 }) == 2, "median of an odd count")
T.check(rm.median({ 4, 1, 3, 2 }) == 2.5, "median of an even count: the mean of the middle two")
T.check(rm.median({}) == nil, "median of nothing")

local r = rm.parse_kv("result impl=mdoctor model=vgg16 step=md_last threads=4 median_ms=12.5 rss_mb=300.0", "result")
T.check(r and r.impl == "mdoctor" and r.model == "vgg16" and r.threads == 4 and r.median_ms == 12.5
  and r.rss_mb == 300, "parse_kv: words and numbers")
T.check(rm.parse_kv("arch model=lenet", "result") == nil, "parse_kv: another head")

local ok, bad = rm.thread_check({ [1] = 100, [4] = 40, [16] = 30 })
T.check(ok and #bad == 0, "thread check: faster with more threads passes")
ok, bad = rm.thread_check({ [1] = 100, [4] = 40, [16] = 41 })
T.check(not ok and #bad == 1 and bad[1][1] == 4 and bad[1][2] == 16, "thread check: 16 slower than 4 fails")
ok, bad = rm.thread_check({ [1] = 100, [4] = 120, [16] = 90 })
T.check(not ok and #bad == 1 and bad[1][1] == 1 and bad[1][2] == 4, "thread check: 4 slower than 1 fails")
ok, bad = rm.thread_check({ [1] = 50, [2] = 50 })
T.check(ok, "thread check: equal times pass")
ok, bad = rm.thread_check({ [16] = 120, [1] = 100, [4] = 110 })
T.check(not ok and #bad == 3, "thread check: every slower pair is named, whatever the order given")

local d = rm.default_threads(16)
T.check(#d == 3 and d[1] == 1 and d[2] == 2 and d[3] == 16, "default threads on 16 cores: 1 2 16")
d = rm.default_threads(2)
T.check(#d == 2 and d[1] == 1 and d[2] == 2, "default threads on 2 cores: 1 2")
d = rm.default_threads(1)
T.check(#d == 1 and d[1] == 1, "default threads on 1 core: 1")

T.check(rm.shq("build/mdoctor") == "build/mdoctor", "shq: a plain word stays")
T.check(rm.shq("a b'c") == "'a b'\\''c'", "shq: spaces and quotes")
local w = rm.words("1 4,16")
T.check(#w == 3 and w[3] == "16", "words: spaces and commas")
-- }======================================================

-- {====================================================== layouts
T.check(bm.fnv1a("") == "811c9dc5" and bm.fnv1a("a") == "e40c292c", "FNV-1a 32 of '' and 'a'")

-- recorded from PyTorch: params, parameter tensors, modules, signature
local TORCH = {
  lenet = { 44426, 10, 15, "59591a50" },
  vgg16 = { 14728266, 54, 48, "3cb814e5" },
  resnet18 = { 11173962, 62, 60, "5d9f3a99" },
  mobilenetv2 = { 2236682, 158, 215, "cf8fbd00" },
}
for _, name in ipairs { "lenet", "vgg16", "resnet18", "mobilenetv2" } do
  local spec = bm.MODELS[name]
  local model = require("arch." .. spec.arch)(spec.opts)
  local text, params, tensors, modules = bm.layout(model)
  local want = TORCH[name]
  T.check(params == want[1] and tensors == want[2] and modules == want[3] and bm.fnv1a(text) == want[4],
    string.format("%s: the layout of PyTorch's model (params %d/%d, tensors %d/%d, modules %d/%d, sig %s/%s)",
      name, params, want[1], tensors, want[2], modules, want[3], bm.fnv1a(text), want[4]))
end
-- }======================================================

T.summary()
