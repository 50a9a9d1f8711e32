--- recipes/gradcam.lua -- the paper's Fig. 5: Grad-CAM of the base model
-- next to Grad-CAM of the treated model, for some test images, as an HTML
-- page of PNG overlays.  The two models come from a recipes/doctor.lua run
-- directory (--run out/doctor: base.safetensors and treated.safetensors) or
-- from --base and --treated; --arch and --width must be the ones they were
-- trained with.  Where the data set has object masks (Fashion-MNIST: the
-- non-zero pixels; an image folder with masks/), the share of each map that
-- falls on the object is measured too: the space-wise constraint should
-- raise it.
--
--   build/mdoctor recipes/gradcam.lua --run out/doctor [--option value ...]   (--help)
--
-- Writes to --out: index.html, img/*.png, results.jsonl (one line per image
-- and a summary), object_share.svg, results.md.
local md = require "mdoctor"
local doctor = require "mdoctor.doctor"
local train = require "mdoctor.train"
local report = require "mdoctor.report"
local common = require "common"

local NAME = "gradcam"
local function pick(list, names)
  local out = {}
  for _, d in ipairs(list) do
    for _, n in ipairs(names) do if d[1] == n then out[#out + 1] = d end end
  end
  return out
end
local DEFAULTS = common.options(pick(common.BASE, { "arch", "width", "data", "data_root", "test_subset", "seed", "threads", "quiet" }), {
  { "run", "", "a recipes/doctor.lua run directory with base.safetensors and treated.safetensors" },
  { "base", "", "the base model (default: RUN/base.safetensors)" },
  { "treated", "", "the treated model (default: RUN/treated.safetensors)" },
  { "layer", "spatial", "Grad-CAM layer: spatial (deepest conv with a map >= 7x7) | last | a module path | a conv number" },
  { "n", 8, "images to show" },
  { "select", "misclassified", "misclassified (by the base model) | fixed (base wrong, treated right) | changed | first" },
  { "class", "label", "the class whose Grad-CAM is drawn: label | pred (each model's own prediction)" },
  { "scale", 4, "upscaling of the PNGs" },
  { "out", "out/gradcam", "output folder" },
})

local function main(args)
  local o = common.parse(NAME, DEFAULTS, args)
  local sel = { misclassified = true, fixed = true, changed = true, first = true }
  if not sel[o.select] then error(NAME .. ": --select must be misclassified, fixed, changed or first, got '" .. o.select .. "'", 0) end
  if o.class ~= "label" and o.class ~= "pred" then error(NAME .. ": --class must be label or pred", 0) end
  local base_path = o.base ~= "" and o.base or (o.run ~= "" and o.run .. "/base.safetensors") or nil
  local treated_path = o.treated ~= "" and o.treated or (o.run ~= "" and o.run .. "/treated.safetensors") or nil
  if not base_path or not treated_path then
    common.usage(NAME, DEFAULTS, io.stderr)
    error(NAME .. ": give --run DIR (a recipes/doctor.lua run) or both --base and --treated", 0)
  end
  o.train_subset, o.batch = 0, 256
  common.setup(o)
  common.banner(NAME, o)
  local d = common.open_data(o)
  local function load(path)
    local m = common.build_model(o, d)
    local ok, err = pcall(function() m:load_state_dict(md.load(path)) end)
    if not ok then
      error(string.format("%s: cannot load %s into %s width %g (give the --arch and --width it was trained with): %s",
        NAME, path, o.arch, o.width, tostring(err):gsub("^.-load_state_dict", "load_state_dict"):sub(1, 300)), 0)
    end
    m:eval()
    return m
  end
  local base, treated = load(base_path), load(treated_path)
  local layer = common.layers(base, o.layer, 1, d)[1]
  if not layer then error(NAME .. ": --layer names no layer", 0) end
  local fs = common.feature_sizes(base, d)[layer]

  -- predictions of both models on the test subset, to pick the images
  local tl = common.loader(o, d.test, d.test_idx, false, 256)
  local l1, labels = train.predict(base, tl)
  local l2 = train.predict(treated, tl)
  local p1, p2, y = md.argmax(l1, 2):totable(), md.argmax(l2, 2):totable(), labels:totable()
  local acc1, acc2 = 0, 0
  local chosen = {}
  for i = 1, #y do
    if p1[i] == y[i] then acc1 = acc1 + 1 end
    if p2[i] == y[i] then acc2 = acc2 + 1 end
    local want = o.select == "first" or (o.select == "misclassified" and p1[i] ~= y[i]) or
      (o.select == "fixed" and p1[i] ~= y[i] and p2[i] == y[i]) or (o.select == "changed" and p1[i] ~= p2[i])
    if want and #chosen < o.n then chosen[#chosen + 1] = i end
  end
  acc1, acc2 = acc1 / math.max(#y, 1), acc2 / math.max(#y, 1)
  print(string.format("test top-1 on %d items: base %.2f%%, treated %.2f%%; Grad-CAM at %s (%dx%d); %d image(s) (%s)",
    #y, 100 * acc1, 100 * acc2, layer, fs[2], fs[3], #chosen, o.select))

  local res = common.results(o)
  local mean = md.tensor(d.info.mean):reshape(d.info.c, 1, 1)
  local std = md.tensor(d.info.std):reshape(d.info.c, 1, 1)
  local H, W = d.info.h, d.info.w
  local function share(cam, mask)
    if not mask then return nil end
    local up = md.interpolate(cam:reshape(1, 1, cam:size(1), cam:size(2)), { size = { H, W }, mode = "bilinear" }):reshape(H, W)
    local tot = up:sum():item()
    if tot <= 0 then return nil end
    return (up * mask:reshape(H, W):float()):sum():item() / tot
  end
  local names = d.names
  local cards, rows, bars_l, bars_1, bars_2 = {}, {}, {}, {}, {}
  local s1, s2, sa, ns = 0, 0, 0, 0
  for _, i in ipairs(chosen) do
    local raw, label, mask = d.test:get(i)
    if d.mask_fn then mask = d.mask_fn(raw) end
    local x = (raw - mean) / std
    local c1 = o.class == "pred" and p1[i] or label
    local c2 = o.class == "pred" and p2[i] or label
    local cam1 = doctor.gradcam(base, x, c1, layer)
    local cam2 = doctor.gradcam(treated, x, c2, layer)
    local f0, f1, f2 = string.format("img/%05d_img.png", i), string.format("img/%05d_base.png", i), string.format("img/%05d_treated.png", i)
    report.image_png(o.out .. "/" .. f0, raw, o.scale)
    report.overlay_png(o.out .. "/" .. f1, raw, cam1, { scale = o.scale })
    report.overlay_png(o.out .. "/" .. f2, raw, cam2, { scale = o.scale })
    local sh1, sh2 = share(cam1, mask), share(cam2, mask)
    local area = mask and mask:float():mean():item() or nil
    if sh1 and sh2 then s1, s2, sa, ns = s1 + sh1, s2 + sh2, sa + area, ns + 1 end
    res:line { kind = "image", item = i, label = label, base_pred = p1[i], treated_pred = p2[i], cam_class_base = c1,
      cam_class_treated = c2, object_share_base = sh1, object_share_treated = sh2, object_area = area,
      image = f0, cam_base = f1, cam_treated = f2 }
    local F = common.pct
    rows[#rows + 1] = { i, names[label + 1], names[p1[i] + 1], names[p2[i] + 1], F(sh1), F(sh2), F(area) }
    bars_l[#bars_l + 1] = "#" .. i
    bars_1[#bars_1 + 1] = sh1 or 0
    bars_2[#bars_2 + 1] = sh2 or 0
    cards[#cards + 1] = string.format("<div class='card'><img src='%s'> <img src='%s'> <img src='%s'><br>test #%d: true <b>%s</b>; " ..
      "base says <b>%s</b>, treated says <b>%s</b>%s</div>", f0, f1, f2, i, report.esc(names[label + 1]),
      report.esc(names[p1[i] + 1]), report.esc(names[p2[i] + 1]),
      area and string.format("<br>Grad-CAM on the object: %s%% &rarr; %s%% (object area %.0f%%)", common.fmt("%.0f", sh1 and 100 * sh1),
        common.fmt("%.0f", sh2 and 100 * sh2), 100 * area) or "")
  end
  local summary = { kind = "summary", layer = layer, base = base_path, treated = treated_path, n_test = #y,
    base_top1 = acc1, treated_top1 = acc2, images = #chosen, select = o.select,
    object_share_base = ns > 0 and s1 / ns or nil, object_share_treated = ns > 0 and s2 / ns or nil,
    object_area = ns > 0 and sa / ns or nil }
  res:line(summary)

  local svg = ""
  if ns > 0 then
    svg = report.bars_svg(bars_l, { { name = "base", values = bars_1, colour = "#999999" },
      { name = "treated", values = bars_2, colour = "#4477aa" } }, { width = math.max(360, 70 * #bars_l + 60) })
    local f = assert(io.open(o.out .. "/object_share.svg", "w"))
    f:write(svg, "\n")
    f:close()
  end

  local CSS = "body{font-family:sans-serif;margin:24px;max-width:1100px;color:#222} .grid{display:flex;flex-wrap:wrap;gap:14px}" ..
    " .card{border:1px solid #ddd;padding:8px;font-size:12px} img{image-rendering:pixelated} .muted{color:#777;font-size:12px}"
  local html = { "<!doctype html><html><head><meta charset='utf-8'><title>Grad-CAM: base vs treated</title><style>", CSS,
    "</style></head><body><h1>Grad-CAM: base vs treated (Fig. 5)</h1>",
    string.format("<p>test top-1 on %d items: base <b>%.2f%%</b>, treated <b>%.2f%%</b>. Grad-CAM of the %s at %s (%dx%d).</p>",
      #y, 100 * acc1, 100 * acc2, o.class == "pred" and "predicted class" or "true class", report.esc(layer), fs[2], fs[3]),
    string.format("<p class='muted'>%s; %s; %s width %g on %s. Each card: the image, Grad-CAM of the base model, Grad-CAM of the treated model.</p>",
      report.esc(base_path), report.esc(treated_path), report.esc(o.arch), o.width, report.esc(o.data)) }
  if ns > 0 then
    html[#html + 1] = string.format("<p>mean share of Grad-CAM on the object: base %.1f%%, treated %.1f%% (object area %.1f%%)</p>%s",
      100 * summary.object_share_base, 100 * summary.object_share_treated, 100 * summary.object_area, svg)
  end
  html[#html + 1] = "<div class='grid'>" .. table.concat(cards, "\n") .. "</div></body></html>"
  report.write_file(o.out .. "/index.html", table.concat(html, "\n"))

  local tbl = common.md_table({ "test item", "true", "base", "treated", "CAM on object, base %", "treated %", "object area %" }, rows)
  res:markdown(string.format("# Grad-CAM: base vs treated (paper Fig. 5)\n\nbase %s, treated %s (%s width %g, %s); test top-1 on %d items: " ..
    "base %.2f%%, treated %.2f%%. Grad-CAM of the %s at %s; images: %s.\n\n%s%s\n[the overlays](index.html)\n", base_path, treated_path,
    o.arch, o.width, o.data, #y, 100 * acc1, 100 * acc2, o.class == "pred" and "predicted class" or "true class", layer, o.select, tbl,
    ns > 0 and string.format("\nmean share of Grad-CAM on the object: base %.1f%%, treated %.1f%% (object area %.1f%%).\n\n![object share](object_share.svg)\n",
      100 * summary.object_share_base, 100 * summary.object_share_treated, 100 * summary.object_area) or ""))
  print("")
  io.write(tbl)
  if ns > 0 then
    print(string.format("\nmean share of Grad-CAM on the object: base %.1f%%, treated %.1f%% (object area %.1f%%)",
      100 * summary.object_share_base, 100 * summary.object_share_treated, 100 * summary.object_area))
  end
  print(string.format("\nresults: %s/index.html, %s/results.md, %s", o.out, o.out, res.path))
end

main(arg or {})
