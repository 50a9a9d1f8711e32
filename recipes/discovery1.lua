--- recipes/discovery1.lua -- the paper's discovery 1: each class relies on a
-- few, specific kernels, more so in deeper layers.  For every conv layer (or
-- every k-th) of a trained model: the class x kernel map of the diagnosis
-- (doctor.diagnose), its sparsity (doctor.sparsity: the share of kernels that
-- hold half of a class's total correlation, averaged over classes; 0.5 for a
-- flat map, small = concentrated) and how much the classes' rows differ
-- (mean cosine similarity between class rows, and the mean Jaccard overlap
-- of the kernel sets that hold half of each class's correlation).  The same numbers for the untrained (initial) model
-- are the reference: what a map looks like before any learning.
--
--   build/mdoctor recipes/discovery1.lua [--option value ...]   (--help)
--
-- Writes to --out: results.jsonl (one line per layer and model),
-- img/map_<n>.png (heatmaps, rows = classes normalised per row),
-- sparsity.svg, similarity.svg, results.md, base.safetensors.
local md = require "mdoctor"
local doctor = require "mdoctor.doctor"
local report = require "mdoctor.report"
local common = require "common"

local NAME = "discovery1"
local DEFAULTS = common.options(common.BASE, common.DOCTOR, {
  { "layers", "all", "the layers: all | a comma list of module paths or conv numbers" },
  { "every", 1, "with --layers all: every k-th conv layer (and the last)" },
  { "untrained", true, "also diagnose the model at initialisation (the reference)" },
  { "out", "out/discovery1", "output folder" },
})

--- per-layer statistics of a class x kernel map, over the classes that had
-- sifted samples (valid: list of 1-based rows); the others are nan / null
local function stats(map, valid)
  local sp_all = doctor.sparsity(map)
  local all = map:totable()
  local rows, sp = {}, {}
  local per = {}
  for c = 1, #all do per[c] = 0 / 0 end
  for _, r in ipairs(valid) do rows[#rows + 1] = all[r]; sp[#sp + 1] = sp_all[r]; per[r] = sp_all[r] end
  local cos = common.row_cosines(rows)
  local overlap = common.row_overlaps(rows)
  return { sparsity = common.mean(sp), sparsity_per_class = per, cos = cos, overlap = overlap }
end

local function main(args)
  local o = common.parse(NAME, DEFAULTS, args)
  if o.every < 1 then error(NAME .. ": --every must be >= 1", 0) end
  common.setup(o)
  common.banner(NAME, o)
  local t0 = md.now()
  local d = common.open_data(o)
  common.print_data(d)
  md.manual_seed(o.seed)
  local init = common.build_model(o, d) -- the same initial weights base_model trains from (same seed)
  local base, base_ev = common.base_model(o, d)
  local layers = common.layers(base, o.layers, o.every, d)
  if #layers == 0 then error(NAME .. ": no layers", 0) end
  local sizes = common.feature_sizes(base, d)
  local sifted = common.sift(o, d, base, 0)
  local valid, missing = {}, {}
  for c = 0, d.K - 1 do
    if #(sifted.high[c] or {}) > 0 then valid[#valid + 1] = c + 1 else missing[#missing + 1] = d.names[c + 1] end
  end
  if #valid == 0 then error(NAME .. ": no class has a correctly classified training sample (is the model trained?)", 0) end
  if #missing > 0 then
    print(string.format("note: %d class(es) without a correctly classified training sample, left out of the statistics: %s",
      #missing, table.concat(missing, ", ")))
  end
  local dopts = { form = o.form, J = o.J, delta = o.delta, classes = d.K, transform = { normalize = true } }
  local maps = doctor.diagnose(base, d.sub, sifted.high, layers, dopts)
  local maps0 = o.untrained and doctor.diagnose(init, d.sub, sifted.high, layers, dopts) or nil

  local res = common.results(o)
  res:line { kind = "base", test_top1 = base_ev.top1, n_test = base_ev.n }
  local rows, sp_pts, sp0_pts, cc_pts, cc0_pts, ov_pts, ov0_pts, ticks, imgs = {}, {}, {}, {}, {}, {}, {}, {}, {}
  for _, l in ipairs(layers) do
    local depth = common.conv_index(base, l)
    local sz = sizes[l]
    local s = stats(maps[l], valid)
    local png = string.format("img/map_%02d.png", depth)
    report.heatmap_png(o.out .. "/" .. png, maps[l], { row_norm = true })
    res:line { kind = "trained", layer = l, depth = depth, kernels = sz[1], map_h = sz[2], map_w = sz[3],
      sparsity = s.sparsity, sparsity_per_class = s.sparsity_per_class, cos = s.cos, overlap = s.overlap, heatmap = png }
    local s0
    if maps0 then
      s0 = stats(maps0[l], valid)
      local png0 = string.format("img/map_%02d_init.png", depth)
      report.heatmap_png(o.out .. "/" .. png0, maps0[l], { row_norm = true })
      res:line { kind = "untrained", layer = l, depth = depth, kernels = sz[1], sparsity = s0.sparsity,
        sparsity_per_class = s0.sparsity_per_class, cos = s0.cos, overlap = s0.overlap, heatmap = png0 }
      sp0_pts[#sp0_pts + 1] = { depth, s0.sparsity }
      cc0_pts[#cc0_pts + 1] = { depth, s0.cos }
      ov0_pts[#ov0_pts + 1] = { depth, s0.overlap }
      imgs[#imgs + 1] = string.format("| %d %s | ![](%s) | ![](%s) |", depth, l, png, png0)
    else
      imgs[#imgs + 1] = string.format("| %d %s | ![](%s) |", depth, l, png)
    end
    sp_pts[#sp_pts + 1] = { depth, s.sparsity }
    cc_pts[#cc_pts + 1] = { depth, s.cos }
    ov_pts[#ov_pts + 1] = { depth, s.overlap }
    ticks[#ticks + 1] = { depth, string.format("%d %s", depth, l) }
    local F = common.fmt
    rows[#rows + 1] = { depth, l, sz[1], F("%.3f", s.sparsity), F("%.3f", s0 and s0.sparsity), F("%.3f", s.cos),
      F("%.3f", s0 and s0.cos), F("%.3f", s.overlap), F("%.3f", s0 and s0.overlap) }
  end

  local function plot(file, title, ylabel, series)
    local f = assert(io.open(o.out .. "/" .. file, "w"))
    f:write(common.plot_svg { title = title, xlabel = "conv layer (depth)", ylabel = ylabel, series = series, xticks = ticks })
    f:close()
  end
  local s1 = { { name = "trained", points = sp_pts } }
  if maps0 then s1[2] = { name = "untrained (init)", points = sp0_pts, colour = "#999999" } end
  plot("sparsity.svg", string.format("Share of kernels holding half of a class's correlation (%s width %g)", o.arch, o.width),
    "sparsity (lower = fewer kernels)", s1)
  local s2 = { { name = "cosine, trained", points = cc_pts, colour = "#4477aa" },
    { name = "overlap, trained", points = ov_pts, colour = "#ee6677" } }
  if maps0 then
    s2[3] = { name = "cosine, init", points = cc0_pts, colour = "#4477aa", dash = true }
    s2[4] = { name = "overlap, init", points = ov0_pts, colour = "#ee6677", dash = true }
  end
  plot("similarity.svg", string.format("How alike the classes' kernels are (%s width %g)", o.arch, o.width),
    "mean over pairs of classes", s2)

  local tbl = common.md_table({ "depth", "layer", "kernels", "sparsity", "sparsity (init)", "cos", "cos (init)", "overlap", "overlap (init)" }, rows)
  res:markdown(string.format("# Discovery 1: class x kernel maps are sparse and class-specific\n\n" ..
    "%s width %g on %s (%d train items; base test top-1 %.2f%% on %d), form %s, T %d, J %d, delta %g, seed %d; %d of %d classes.\n" ..
    "sparsity: the share of a layer's kernels that hold half of a class's total correlation, averaged over classes (0.5 for a flat map). " ..
    "cos: the mean cosine similarity between two classes' rows of the map; overlap: the mean Jaccard index of two classes' " ..
    "kernel sets (the kernels holding half of each class's correlation; 0 = disjoint, 1 = the same).\n\n%s\n" ..
    "![sparsity vs depth](sparsity.svg)\n\n![similarity vs depth](similarity.svg)\n\n" ..
    "Class x kernel maps (rows: classes, columns: kernels, normalised per row):\n\n| layer | trained |%s\n| --- | --- |%s\n%s\n",
    o.arch, o.width, o.data, #d.train_idx, 100 * base_ev.top1, base_ev.n, o.form, o.T, o.J, o.delta, o.seed, #valid, d.K, tbl,
    maps0 and " untrained |" or "", maps0 and " --- |" or "", table.concat(imgs, "\n")))
  print("")
  io.write(tbl)
  print(string.format("\nresults: %s/results.md, %s, %s/sparsity.svg, %s/similarity.svg (%s)", o.out, res.path, o.out, o.out,
    require("mdoctor.util").hms(md.now() - t0)))
end

main(arg or {})
