--- recipes/ablate_depth.lua -- the paper's Fig. 6: where in the network does
-- the treatment help?  Treat the base model with the channel-wise and/or the
-- space-wise constraint at ONE conv layer at a time, for every conv layer (or
-- every k-th), and report the test accuracy per layer depth next to the base
-- model and a fine-tuning control (the same fine-tuning, CE only).
--
--   build/mdoctor recipes/ablate_depth.lua [--option value ...]   (--help)
--
-- Writes to --out: results.jsonl (one line per run), depth.svg (accuracy vs
-- depth), results.md (the table), base.safetensors.
local md = require "mdoctor"
local common = require "common"

local NAME = "ablate_depth"
local DEFAULTS = common.options(common.BASE, common.DOCTOR, {
  { "train_subset", 3000, "use the first N training items (0 = all)" },
  { "constraint", "both", "channel | space | both: the constraint(s) applied at the layer" },
  { "layers", "all", "the layers to try: all | a comma list of module paths or conv numbers" },
  { "every", 2, "with --layers all: every k-th conv layer (and the last); 1 = all" },
  { "control", true, "also fine-tune with CE only (the same schedule) as a control" },
  { "out", "out/ablate_depth", "output folder" },
})

local function main(args)
  local o = common.parse(NAME, DEFAULTS, args)
  if o.constraint ~= "channel" and o.constraint ~= "space" and o.constraint ~= "both" then
    common.usage(NAME, DEFAULTS, io.stderr)
    error(NAME .. ": --constraint must be channel, space or both, got '" .. o.constraint .. "'", 0)
  end
  if o.every < 1 then error(NAME .. ": --every must be >= 1", 0) end
  common.setup(o)
  common.banner(NAME, o)
  local t0 = md.now()
  local d = common.open_data(o)
  local use_ch = o.constraint ~= "space"
  local use_sp = o.constraint ~= "channel"
  if use_sp and not d.has_masks then error(NAME .. ": --constraint " .. o.constraint .. " needs object masks; this data set has none", 0) end
  common.print_data(d)

  local base, base_ev = common.base_model(o, d)
  local layers = common.layers(base, o.layers, o.every, d)
  if #layers == 0 then error(NAME .. ": no layers to try", 0) end
  local sizes = common.feature_sizes(base, d)
  local expand = o.expand >= 0 and o.expand or common.expand_px(30, d.info.h)
  local sifted = common.sift(o, d, base, o.annotated)
  local annotated = use_sp and common.annotated(d, sifted, o.annotated) or {}
  local masks = use_ch and common.channel_masks(o, d, base, sifted, layers) or {}

  local res = common.results(o)
  res:line { kind = "base", test_top1 = base_ev.top1, test_top5 = base_ev.top5, n_test = base_ev.n }
  local control
  if o.control then
    local _, ev, h = common.treat(o, d, base, {})
    control = ev
    res:line { kind = "control", test_top1 = ev.top1, test_top5 = ev.top5, ce = h[#h].ce }
    print(string.format("control (CE only fine-tuning): test top-1 %.2f%%", 100 * ev.top1))
  end

  local rows, pts_treated = {}, {}
  for _, l in ipairs(layers) do
    local depth = common.conv_index(base, l)
    local sz = sizes[l]
    local t1 = md.now()
    local _, ev, h = common.treat(o, d, base, {
      ch_layers = use_ch and { l } or {}, ch_masks = masks,
      sp_layers = use_sp and { l } or {}, annotated = annotated, expand = expand })
    local last = h[#h]
    local irrelevant = masks[l] and masks[l]:float():mean():item() or nil
    res:line { kind = "treated", layer = l, depth = depth, kernels = sz[1], map_h = sz[2], map_w = sz[3],
      constraint = o.constraint, test_top1 = ev.top1, test_top5 = ev.top5, base_top1 = base_ev.top1,
      control_top1 = control and control.top1, change = ev.top1 - base_ev.top1, ce = last.ce, ch = last.ch, sp = last.sp,
      irrelevant_share = irrelevant, seconds = md.now() - t1 }
    pts_treated[#pts_treated + 1] = { depth, ev.top1 }
    rows[#rows + 1] = { depth, l, string.format("%dx%dx%d", sz[1], sz[2], sz[3]),
      irrelevant and string.format("%.0f%%", 100 * irrelevant) or "-", common.pct(base_ev.top1),
      control and common.pct(control.top1) or "-", common.pct(ev.top1),
      string.format("%+.2f", 100 * (ev.top1 - base_ev.top1)) }
    print(string.format("layer %-22s (conv %d, %dx%dx%d): test top-1 %.2f%% (base %.2f%%, %+.2f points)", l, depth,
      sz[1], sz[2], sz[3], 100 * ev.top1, 100 * base_ev.top1, 100 * (ev.top1 - base_ev.top1)))
  end

  -- plot: accuracy against depth, base and control as dashed lines
  local xs = {}
  for _, p in ipairs(pts_treated) do xs[#xs + 1] = p[1] end
  local x1, x2 = xs[1], xs[#xs]
  local series = { { name = "treated at the layer (" .. o.constraint .. ")", points = pts_treated } }
  series[#series + 1] = { name = "base", points = { { x1, base_ev.top1 }, { x2, base_ev.top1 } }, dash = true, colour = "#777777" }
  if control then
    series[#series + 1] = { name = "fine-tuned, CE only", points = { { x1, control.top1 }, { x2, control.top1 } }, dash = true, colour = "#228833" }
  end
  local ticks = {}
  for i, l in ipairs(layers) do ticks[i] = { xs[i], string.format("%d %s", xs[i], l) } end
  local f = assert(io.open(o.out .. "/depth.svg", "w"))
  f:write(common.plot_svg { title = string.format("Treatment at one layer (%s, %s width %g, %s)", o.constraint, o.arch, o.width, o.data),
    xlabel = "conv layer (depth)", ylabel = "test top-1", series = series, xticks = ticks, percent = true })
  f:close()

  local header = { "depth", "layer", "map CxHxW", "irrelevant", "base %", "control %", "treated %", "change" }
  local tbl = common.md_table(header, rows)
  res:markdown(string.format("# Treatment depth ablation (paper Fig. 6)\n\n" ..
    "%s width %g on %s (%d train, %d test items), constraint %s, form %s, %d treatment epoch(s) at lr %g, " ..
    "alpha %g, beta %g, T %d, J %d, delta %g, %d annotated/class, mask expansion %d px, seed %d.\n" ..
    "'irrelevant' is the share of (class, kernel) pairs the channel-wise constraint suppresses; 'control' fine-tunes with CE only.\n\n" ..
    "%s\n![accuracy vs depth](depth.svg)\n", o.arch, o.width, o.data, #d.train_idx, d.n_test, o.constraint, o.form,
    o.treat_epochs, o.treat_lr, o.alpha, o.beta, o.T, o.J, o.delta, o.annotated, expand, o.seed, tbl))
  print("")
  io.write(tbl)
  print(string.format("\nresults: %s/results.md, %s, %s/depth.svg (%s)", o.out, res.path, o.out, require("mdoctor.util").hms(md.now() - t0)))
end

main(arg or {})
