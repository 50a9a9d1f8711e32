--- recipes/ablate_annotated.lua -- the paper's Table 2: how many annotated
-- samples does the space-wise constraint need?  Treat the base model with the
-- space-wise constraint using 0, 5, 10, 20, 50 annotated samples per class
-- (the hardest training samples of each class, as sifted: correct with low
-- confidence or wrong with high confidence, hardest first) and report the
-- test accuracy of each.  0 annotated samples is fine-tuning with CE only
-- (plus the channel-wise constraint with --channel).
--
--   build/mdoctor recipes/ablate_annotated.lua [--option value ...]   (--help)
--
-- Writes to --out: results.jsonl, annotated.svg, results.md, base.safetensors.
local md = require "mdoctor"
local common = require "common"

local NAME = "ablate_annotated"
local DEFAULTS = common.options(common.BASE, common.DOCTOR, {
  { "counts", "0,5,10,20,50", "annotated samples per class to try (comma list)" },
  { "sp_layers", "spatial", "S_sp: layers of the space-wise constraint (spatial = deepest conv with a map >= 7x7, last, paths, conv numbers)" },
  { "channel", false, "also apply the channel-wise constraint (at --ch_layers) in every run" },
  { "ch_layers", "last", "S_ch with --channel" },
  { "out", "out/ablate_annotated", "output folder" },
})

local function main(args)
  local o = common.parse(NAME, DEFAULTS, args)
  local counts = common.numbers(o.counts, NAME .. ": --counts")
  for _, c in ipairs(counts) do
    if math.type(c) ~= "integer" or c < 0 then error(NAME .. ": --counts must be integers >= 0", 0) end
  end
  common.setup(o)
  common.banner(NAME, o)
  local t0 = md.now()
  local d = common.open_data(o)
  if not d.has_masks then error(NAME .. ": the space-wise constraint needs object masks; this data set has none", 0) end
  common.print_data(d)
  local base, base_ev = common.base_model(o, d)
  local sp_layers = common.layers(base, o.sp_layers, 1, d)
  local ch_layers = o.channel and common.layers(base, o.ch_layers, 1, d) or {}
  local expand = o.expand >= 0 and o.expand or common.expand_px(30, d.info.h)
  local maxc = 0
  for _, c in ipairs(counts) do maxc = math.max(maxc, c) end
  local sifted = common.sift(o, d, base, maxc)
  local masks = common.channel_masks(o, d, base, sifted, ch_layers)
  print(string.format("space-wise at %s, mask expansion %d px%s", table.concat(sp_layers, ", "), expand,
    #ch_layers > 0 and (", channel-wise at " .. table.concat(ch_layers, ", ")) or ""))

  local res = common.results(o)
  res:line { kind = "base", test_top1 = base_ev.top1, test_top5 = base_ev.top5, n_test = base_ev.n }
  local rows, pts = {}, {}
  for _, c in ipairs(counts) do
    local ann = common.annotated(d, sifted, c)
    local _, ev, h = common.treat(o, d, base, { ch_layers = ch_layers, ch_masks = masks,
      sp_layers = c > 0 and sp_layers or {}, annotated = ann, expand = expand })
    local last = h[#h]
    res:line { kind = "treated", per_class = c, annotated = #ann, sp_layers = sp_layers, ch_layers = ch_layers,
      expand = expand, test_top1 = ev.top1, test_top5 = ev.top5, base_top1 = base_ev.top1, change = ev.top1 - base_ev.top1,
      ce = last.ce, ch = last.ch, sp = last.sp }
    pts[#pts + 1] = { c, ev.top1 }
    rows[#rows + 1] = { c, #ann, common.pct(base_ev.top1), common.pct(ev.top1), string.format("%+.2f", 100 * (ev.top1 - base_ev.top1)),
      last.sp and string.format("%.4g", last.sp) or "-" }
    print(string.format("%3d annotated/class (%4d in all): test top-1 %.2f%% (base %.2f%%, %+.2f points)", c, #ann,
      100 * ev.top1, 100 * base_ev.top1, 100 * (ev.top1 - base_ev.top1)))
  end

  local x1, x2 = pts[1][1], pts[#pts][1]
  local f = assert(io.open(o.out .. "/annotated.svg", "w"))
  f:write(common.plot_svg { title = string.format("Space-wise treatment vs annotated samples (%s width %g, %s)", o.arch, o.width, o.data),
    xlabel = "annotated samples per class", ylabel = "test top-1", percent = true,
    series = { { name = "treated", points = pts },
      { name = "base", points = { { x1, base_ev.top1 }, { x2, base_ev.top1 } }, dash = true, colour = "#777777" } } })
  f:close()

  local tbl = common.md_table({ "per class", "annotated", "base %", "treated %", "change", "L_sp (last epoch)" }, rows)
  res:markdown(string.format("# Annotated samples ablation (paper Table 2)\n\n" ..
    "%s width %g on %s (%d train, %d test items), space-wise at %s (expansion %d px)%s, form %s, %d treatment epoch(s) at lr %g, beta %g, seed %d.\n" ..
    "Annotated samples are the hardest training samples of each class (correct with low confidence, or wrong with high confidence); 0 = no space-wise term.\n\n%s\n![accuracy vs annotated samples](annotated.svg)\n",
    o.arch, o.width, o.data, #d.train_idx, d.n_test, table.concat(sp_layers, ", "), expand,
    #ch_layers > 0 and (", channel-wise at " .. table.concat(ch_layers, ", ") .. string.format(" (alpha %g)", o.alpha)) or "",
    o.form, o.treat_epochs, o.treat_lr, o.beta, o.seed, tbl))
  print("")
  io.write(tbl)
  print(string.format("\nresults: %s/results.md, %s, %s/annotated.svg (%s)", o.out, res.path, o.out, require("mdoctor.util").hms(md.now() - t0)))
end

main(arg or {})
