--- recipes/ablate_expand.lua -- the paper's Table 3: how far should the object
-- mask be expanded before the space-wise constraint penalises the gradient
-- outside it?  Treat the base model with the space-wise constraint for mask
-- expansions of 0, 10, 20, 30, 40, 50 px at 224 x 224 (the paper's scale),
-- each scaled to the input size as recipes/doctor.lua does (30 px at 224 is
-- 4 px at 28), and report the test accuracy of each.
--
--   build/mdoctor recipes/ablate_expand.lua [--option value ...]   (--help)
--
-- Writes to --out: results.jsonl, expand.svg, results.md, base.safetensors.
local md = require "mdoctor"
local common = require "common"

local NAME = "ablate_expand"
local DEFAULTS = common.options(common.BASE, common.DOCTOR, {
  { "values", "0,10,20,30,40,50", "mask expansions to try, in px at 224 x 224 (comma list)" },
  { "scale", true, "scale --values from 224 px to the input size (false: they are input pixels)" },
  { "sp_layers", "spatial", "S_sp: layers of the space-wise constraint (spatial = deepest conv with a map >= 7x7, last, paths, conv numbers)" },
  { "channel", false, "also apply the channel-wise constraint (at --ch_layers) in every run" },
  { "ch_layers", "last", "S_ch with --channel" },
  { "out", "out/ablate_expand", "output folder" },
})

local function main(args)
  local o = common.parse(NAME, DEFAULTS, args)
  local values = common.numbers(o.values, NAME .. ": --values")
  for _, v in ipairs(values) do if v < 0 then error(NAME .. ": --values must be >= 0", 0) end end
  common.setup(o)
  common.banner(NAME, o)
  local t0 = md.now()
  local d = common.open_data(o)
  if not d.has_masks then error(NAME .. ": the space-wise constraint needs object masks; this data set has none", 0) end
  common.print_data(d)
  local base, base_ev = common.base_model(o, d)
  local sp_layers = common.layers(base, o.sp_layers, 1, d)
  if #sp_layers == 0 then error(NAME .. ": --sp_layers names no layer", 0) end
  local ch_layers = o.channel and common.layers(base, o.ch_layers, 1, d) or {}
  local sifted = common.sift(o, d, base, o.annotated)
  local ann = common.annotated(d, sifted, o.annotated)
  local masks = common.channel_masks(o, d, base, sifted, ch_layers)
  local sizes = common.feature_sizes(base, d)
  local sz = sizes[sp_layers[1]]
  print(string.format("space-wise at %s (map %dx%d), %d annotated samples", table.concat(sp_layers, ", "), sz[2], sz[3], #ann))

  local res = common.results(o)
  res:line { kind = "base", test_top1 = base_ev.top1, test_top5 = base_ev.top5, n_test = base_ev.n }
  local rows, pts = {}, {}
  for _, v in ipairs(values) do
    local px = o.scale and common.expand_px(v, d.info.h) or math.floor(v + 0.5)
    local _, ev, h = common.treat(o, d, base, { ch_layers = ch_layers, ch_masks = masks, sp_layers = sp_layers,
      annotated = ann, expand = px })
    local last = h[#h]
    res:line { kind = "treated", expand_224 = o.scale and v or nil, expand_px = px, sp_layers = sp_layers, annotated = #ann,
      test_top1 = ev.top1, test_top5 = ev.top5, base_top1 = base_ev.top1, change = ev.top1 - base_ev.top1,
      ce = last.ce, ch = last.ch, sp = last.sp }
    pts[#pts + 1] = { v, ev.top1 }
    rows[#rows + 1] = { o.scale and v or "-", px, common.pct(base_ev.top1), common.pct(ev.top1),
      string.format("%+.2f", 100 * (ev.top1 - base_ev.top1)), last.sp and string.format("%.4g", last.sp) or "-" }
    print(string.format("expand %s%d px: test top-1 %.2f%% (base %.2f%%, %+.2f points)",
      o.scale and string.format("%g px at 224 = ", v) or "", px, 100 * ev.top1, 100 * base_ev.top1, 100 * (ev.top1 - base_ev.top1)))
  end

  local x1, x2 = pts[1][1], pts[#pts][1]
  local f = assert(io.open(o.out .. "/expand.svg", "w"))
  f:write(common.plot_svg { title = string.format("Space-wise treatment vs mask expansion (%s width %g, %s)", o.arch, o.width, o.data),
    xlabel = o.scale and string.format("mask expansion (px at 224; input is %d px)", d.info.h) or "mask expansion (input px)",
    ylabel = "test top-1", percent = true,
    series = { { name = "treated", points = pts },
      { name = "base", points = { { x1, base_ev.top1 }, { x2, base_ev.top1 } }, dash = true, colour = "#777777" } } })
  f:close()

  local tbl = common.md_table({ "px at 224", "input px", "base %", "treated %", "change", "L_sp (last epoch)" }, rows)
  res:markdown(string.format("# Mask expansion ablation (paper Table 3)\n\n" ..
    "%s width %g on %s (%d train, %d test items, %d px inputs), space-wise at %s (map %dx%d)%s, %d annotated samples, form %s, " ..
    "%d treatment epoch(s) at lr %g, beta %g, seed %d.\n\n%s\n![accuracy vs expansion](expand.svg)\n",
    o.arch, o.width, o.data, #d.train_idx, d.n_test, d.info.h, table.concat(sp_layers, ", "), sz[2], sz[3],
    #ch_layers > 0 and (", channel-wise at " .. table.concat(ch_layers, ", ")) or "", #ann, o.form, o.treat_epochs,
    o.treat_lr, o.beta, o.seed, tbl))
  print("")
  io.write(tbl)
  print(string.format("\nresults: %s/results.md, %s, %s/expand.svg (%s)", o.out, res.path, o.out, require("mdoctor.util").hms(md.now() - t0)))
end

main(arg or {})
