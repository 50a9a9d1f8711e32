--- recipes/discovery2.lua -- the paper's discovery 2 (Fig. 3): the gradient
-- correlations of adversarial samples deviate from their class's pattern.
-- The class x kernel map of a layer is diagnosed on the most confident
-- training samples (with feature noise U[-delta, delta] at the layer, J
-- draws).  Then test samples the model gets right are attacked with FGSM,
-- x' = clamp(x + eps * sign(d CE / d x), 0, 1), for each eps; for every
-- sample the per-sample correlation pattern at the layer (same noise) is
-- compared with the class map by cosine similarity:
--   cos_true  the pattern of the TRUE class's score vs the true class's row
--   cos_pred  the pattern of the PREDICTED class's score vs that class's row
--             (for fooled samples: does the sample "look like" the class it
--             is taken for?)
-- eps = 0 is the normal samples.
--
--   build/mdoctor recipes/discovery2.lua [--option value ...]   (--help)
--
-- Writes to --out: results.jsonl (one line per eps), samples.jsonl (one line
-- per sample and eps), adversarial.svg, results.md, base.safetensors.
local md = require "mdoctor"
local doctor = require "mdoctor.doctor"
local report = require "mdoctor.report"
local common = require "common"

local NAME = "discovery2"
local DEFAULTS = common.options(common.BASE, common.DOCTOR, {
  { "layer", "last", "the layer: last | spatial | a module path | a conv number" },
  { "eps", "0.01,0.02,0.05,0.1", "FGSM step sizes on [0,1] pixels (comma list; 0 = normal samples is always added)" },
  { "n", 300, "test samples to attack (the first N of the test set; the correct ones are used)" },
  { "out", "out/discovery2", "output folder" },
})

local function main(args)
  local o = common.parse(NAME, DEFAULTS, args)
  local eps_list = common.numbers(o.eps, NAME .. ": --eps")
  table.sort(eps_list)
  if eps_list[1] < 0 then error(NAME .. ": --eps must be >= 0", 0) end
  if eps_list[1] ~= 0 then table.insert(eps_list, 1, 0) end
  if o.n < 1 then error(NAME .. ": --n must be >= 1", 0) end
  common.setup(o)
  common.banner(NAME, o)
  local t0 = md.now()
  local d = common.open_data(o)
  common.print_data(d)
  local base, base_ev = common.base_model(o, d)
  local layer = common.layers(base, o.layer, 1, d)[1]
  if not layer then error(NAME .. ": --layer names no layer", 0) end
  local sifted = common.sift(o, d, base, 0)
  local dopts = { form = o.form, J = o.J, delta = o.delta, classes = d.K, transform = { normalize = true } }
  local map = doctor.diagnose(base, d.sub, sifted.high, { layer }, dopts)[layer]
  local rows = map:totable()
  local has_row = {}
  for c = 0, d.K - 1 do has_row[c] = #(sifted.high[c] or {}) > 0 end
  print(string.format("diagnosed %s (%d kernels) on the %d most confident training samples per class", layer, map:size(2), o.T))

  -- the attacked samples: raw images, so the perturbation lives on [0,1] pixels
  local n = math.min(o.n, #d.test)
  local loader = md.loader(d.test, { batch_size = o.batch, shuffle = false, indices = common.range(1, n),
    transform = { normalize = false } })
  local copts = { form = o.form, J = o.J, delta = o.delta }
  local acc = {}
  for _, e in ipairs(eps_list) do acc[e] = { all = 0, correct = 0, kept = 0, still = 0, ct = {}, cp = {}, cpf = {}, ctf = {} } end
  local samples = o.out .. "/samples.jsonl"
  os.remove(samples)
  local item = 0
  base:eval()
  for raw, labels in loader:iter() do
    local B = labels:size(1)
    local lab = labels:totable()
    local normal_ok
    for _, e in ipairs(eps_list) do
      local x = e > 0 and common.fgsm(base, raw, labels, e, d.mean, d.std) or raw
      local xn = (x - d.mean) / d.std
      local pred = md.no_grad(function() return md.argmax(base(xn), 2) end)
      local pt = pred:totable()
      if e == 0 then
        normal_ok = {}
        for b = 1, B do normal_ok[b] = pt[b] == lab[b] end
      end
      local a_true = doctor.correlations(base, xn, labels, layer, copts):totable()
      local a_pred = doctor.correlations(base, xn, pred, layer, copts):totable()
      local s = acc[e]
      for b = 1, B do
        local y, p = lab[b], pt[b]
        s.all = s.all + 1
        if p == y then s.correct = s.correct + 1 end
        if normal_ok[b] and has_row[y] then
          s.kept = s.kept + 1
          local ct = common.cosine(a_true[b], rows[y + 1])
          local cp = has_row[p] and common.cosine(a_pred[b], rows[p + 1]) or 0 / 0
          s.ct[#s.ct + 1] = ct
          if cp == cp then s.cp[#s.cp + 1] = cp end
          if p == y then s.still = s.still + 1
          else
            s.ctf[#s.ctf + 1] = ct
            if cp == cp then s.cpf[#s.cpf + 1] = cp end
          end
          report.jsonl(samples, { eps = e, item = item + b, label = y, pred = p, cos_true = ct, cos_pred = cp })
        end
      end
    end
    item = item + B
  end

  local function sd(list)
    local m = common.mean(list)
    local v = 0
    for _, x in ipairs(list) do v = v + (x - m) ^ 2 end
    return #list > 1 and math.sqrt(v / (#list - 1)) or 0 / 0
  end
  local res = common.results(o)
  res:line { kind = "base", test_top1 = base_ev.top1, n_test = base_ev.n, layer = layer }
  local trows, p_acc, p_ct, p_cp, p_cpf = {}, {}, {}, {}, {}
  for _, e in ipairs(eps_list) do
    local s = acc[e]
    local r = { kind = e == 0 and "normal" or "adversarial", eps = e, layer = layer, n = s.all, accuracy = s.correct / math.max(s.all, 1),
      kept = s.kept, fooled = s.kept - s.still, fooled_share = (s.kept - s.still) / math.max(s.kept, 1),
      cos_true = common.mean(s.ct), cos_true_sd = sd(s.ct), cos_pred = common.mean(s.cp), cos_pred_sd = sd(s.cp),
      cos_true_fooled = common.mean(s.ctf), cos_pred_fooled = common.mean(s.cpf) }
    res:line(r)
    p_acc[#p_acc + 1] = { e, r.accuracy }
    p_ct[#p_ct + 1] = { e, r.cos_true }
    p_cp[#p_cp + 1] = { e, r.cos_pred }
    p_cpf[#p_cpf + 1] = { e, r.cos_pred_fooled }
    local F = common.fmt
    trows[#trows + 1] = { e == 0 and "0 (normal)" or string.format("%g", e), common.pct(r.accuracy), s.kept,
      string.format("%d (%.0f%%)", r.fooled, 100 * r.fooled_share), F("%.3f", r.cos_true) .. " ± " .. F("%.3f", r.cos_true_sd),
      F("%.3f", r.cos_pred) .. " ± " .. F("%.3f", r.cos_pred_sd), F("%.3f", r.cos_pred_fooled) }
  end

  local f = assert(io.open(o.out .. "/adversarial.svg", "w"))
  f:write(common.plot_svg { title = string.format("FGSM samples vs the class map at %s (%s width %g)", layer, o.arch, o.width),
    xlabel = "FGSM eps (0 = normal samples)", ylabel = "accuracy / mean cosine", series = {
      { name = "accuracy", points = p_acc, colour = "#777777" },
      { name = "cos, true class", points = p_ct, colour = "#4477aa" },
      { name = "cos, predicted class", points = p_cp, colour = "#ee6677" },
      { name = "cos, predicted (fooled)", points = p_cpf, colour = "#228833" } }, ymax = 1 })
  f:close()

  local tbl = common.md_table({ "eps", "accuracy %", "samples", "fooled", "cos true class", "cos predicted class", "cos predicted (fooled)" }, trows)
  res:markdown(string.format("# Discovery 2: adversarial samples deviate from their class's correlation pattern\n\n" ..
    "%s width %g on %s (base test top-1 %.2f%% on %d), layer %s, form %s, feature noise U[-%g, %g] with J=%d draws, " ..
    "class maps from the %d most confident training samples per class, the first %d test samples, seed %d.\n" ..
    "accuracy: on all %d attacked samples; the other columns: on the samples the model gets right without attack. " ..
    "cos true class: cosine between the sample's correlation pattern for its true class's score and the true class's row of " ..
    "the map; cos predicted class: the same for the predicted class (fooled: only samples the attack fooled).\n\n%s\n" ..
    "![FGSM](adversarial.svg)\n", o.arch, o.width, o.data, 100 * base_ev.top1, base_ev.n, layer, o.form, o.delta, o.delta, o.J,
    o.T, n, o.seed, n, tbl))
  print("")
  io.write(tbl)
  print(string.format("\nresults: %s/results.md, %s, %s, %s/adversarial.svg (%s)", o.out, res.path, samples, o.out,
    require("mdoctor.util").hms(md.now() - t0)))
end

main(arg or {})
