--- mdoctor.report: what a person looks at -- PNG heatmaps of class x kernel
-- maps (the paper's Fig. 2a), gradient overlays on images (Fig. 2b), Grad-CAM
-- (Fig. 5), per-class accuracy before/after (Fig. 4) and training curves as
-- inline SVG, confusion matrices, all in one report.html that opens offline.
local core = require "mdoctor.core"

local report = {}

-- {====================================================== colours
-- a perceptual dark-to-bright map (5 stops, in the spirit of "magma")
local STOPS = {
  { 0.00, 0.00, 0.00, 0.02 }, { 0.25, 0.23, 0.06, 0.44 }, { 0.50, 0.71, 0.21, 0.48 },
  { 0.75, 0.98, 0.53, 0.38 }, { 1.00, 0.99, 0.99, 0.75 },
}
local function colour(v)
  if v ~= v then v = 0 end
  v = math.max(0, math.min(1, v))
  for i = 2, #STOPS do
    local a, b = STOPS[i - 1], STOPS[i]
    if v <= b[1] then
      local t = (v - a[1]) / (b[1] - a[1])
      return a[2] + t * (b[2] - a[2]), a[3] + t * (b[3] - a[3]), a[4] + t * (b[4] - a[4])
    end
  end
  return 1, 1, 1
end
report.colour = colour

--- heatmap PNG of a 2-d tensor (rows x cols), each cell cell_h x cell_w
-- pixels, values normalised per row (per class) when row_norm
function report.heatmap_png(path, t, o)
  o = o or {}
  local m = t:totable()
  local R, C = #m, #m[1]
  local ch, cw = o.cell_h or math.max(4, math.min(24, 240 // R)), o.cell_w or math.max(2, math.min(24, 960 // C))
  local lo, hi = math.huge, -math.huge
  for _, row in ipairs(m) do for _, v in ipairs(row) do lo = math.min(lo, v); hi = math.max(hi, v) end end
  local H, W = R * ch, C * cw
  local rgb = { {}, {}, {} }
  for y = 1, H do
    local r = (y - 1) // ch + 1
    local row = m[r]
    local rlo, rhi = lo, hi
    if o.row_norm then
      rlo, rhi = math.huge, -math.huge
      for _, v in ipairs(row) do rlo = math.min(rlo, v); rhi = math.max(rhi, v) end
    end
    local ry, gy, by = {}, {}, {}
    for x = 1, W do
      local c = (x - 1) // cw + 1
      local v = (row[c] - rlo) / math.max(rhi - rlo, 1e-12)
      ry[x], gy[x], by[x] = colour(v)
    end
    rgb[1][y], rgb[2][y], rgb[3][y] = ry, gy, by
  end
  core.png_write(path, core.tensor(rgb))
  return path
end

--- an image (C,H,W in [0,1]) with a heat overlay (h,w, any scale), upscaled
-- by `scale`; written as PNG
function report.overlay_png(path, image, heat, o)
  o = o or {}
  local scale = o.scale or 4
  local C, H, W = image:size(1), image:size(2), image:size(3)
  local hm = heat:reshape(1, 1, heat:size(1), heat:size(2))
  hm = core.interpolate(hm, { size = { H, W }, mode = "bilinear" }):reshape(H, W)
  local mx = core.max(hm):item()
  local h = hm:totable()
  local img = image:totable()
  local alpha = o.alpha or 0.55
  local out = { {}, {}, {} }
  for y = 1, H * scale do
    local sy = (y - 1) // scale + 1
    local r1, r2, r3 = {}, {}, {}
    for x = 1, W * scale do
      local sx = (x - 1) // scale + 1
      local g = C == 1 and img[1][sy][sx] or nil
      local base = { g or img[1][sy][sx], g or img[2][sy][sx], g or img[3][sy][sx] }
      local cr, cg, cb = colour(mx > 0 and h[sy][sx] / mx or 0)
      r1[x] = (1 - alpha) * base[1] + alpha * cr
      r2[x] = (1 - alpha) * base[2] + alpha * cg
      r3[x] = (1 - alpha) * base[3] + alpha * cb
    end
    out[1][y], out[2][y], out[3][y] = r1, r2, r3
  end
  core.png_write(path, core.tensor(out))
  return path
end

--- an image (C,H,W) in [0,1] upscaled
function report.image_png(path, image, scale)
  scale = scale or 4
  local x = image:reshape(1, image:size(1), image:size(2), image:size(3))
  x = core.interpolate(x, { size = { image:size(2) * scale, image:size(3) * scale }, mode = "nearest" })
  core.png_write(path, core.clamp(x:reshape(image:size(1), image:size(2) * scale, image:size(3) * scale), 0, 1))
  return path
end
-- }======================================================

-- {====================================================== SVG charts
local function esc(s)
  return (tostring(s):gsub("[&<>\"]", { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;" }))
end
report.esc = esc

--- grouped bars: series = {{name=, values={...}, colour=}, ...}, labels = {...}
function report.bars_svg(labels, series, o)
  o = o or {}
  local W, H, pad = o.width or 760, o.height or 260, 40
  local n, k = #labels, #series
  local gw = (W - pad - 10) / n
  local bw = gw * 0.8 / k
  local parts = { string.format('<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="11">', W, H + 40) }
  for i = 0, 4 do
    local v = i / 4
    local y = H - v * (H - 20)
    parts[#parts + 1] = string.format('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/><text x="2" y="%.1f">%d%%</text>', pad, y, W, y, y + 4, v * 100)
  end
  for i, lab in ipairs(labels) do
    for j, s in ipairs(series) do
      local v = s.values[i] or 0
      local x = pad + (i - 1) * gw + gw * 0.1 + (j - 1) * bw
      local h = v * (H - 20)
      parts[#parts + 1] = string.format('<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s %s: %.2f%%</title></rect>',
        x, H - h, bw - 1, h, s.colour or "#4477aa", esc(s.name), esc(lab), v * 100)
    end
    parts[#parts + 1] = string.format('<text x="%.1f" y="%d" text-anchor="middle">%s</text>', pad + (i - 0.5) * gw, H + 14, esc(lab))
  end
  for j, s in ipairs(series) do
    parts[#parts + 1] = string.format('<rect x="%d" y="%d" width="10" height="10" fill="%s"/><text x="%d" y="%d">%s</text>',
      pad + (j - 1) * 150, H + 24, s.colour or "#4477aa", pad + (j - 1) * 150 + 14, H + 33, esc(s.name))
  end
  parts[#parts + 1] = "</svg>"
  return table.concat(parts, "\n")
end

--- line chart: series = {{name=, points={{x,y},...}, colour=}}
function report.lines_svg(series, o)
  o = o or {}
  local W, H, pad = o.width or 520, o.height or 220, 40
  local xmin, xmax, ymin, ymax = math.huge, -math.huge, math.huge, -math.huge
  for _, s in ipairs(series) do
    for _, p in ipairs(s.points) do
      xmin, xmax = math.min(xmin, p[1]), math.max(xmax, p[1])
      ymin, ymax = math.min(ymin, p[2]), math.max(ymax, p[2])
    end
  end
  if xmin == math.huge then return "" end
  if ymax == ymin then ymax = ymin + 1 end
  if xmax == xmin then xmax = xmin + 1 end
  local function X(v) return pad + (v - xmin) / (xmax - xmin) * (W - pad - 10) end
  local function Y(v) return H - (v - ymin) / (ymax - ymin) * (H - 20) end
  local parts = { string.format('<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="11">', W, H + 30) }
  parts[#parts + 1] = string.format('<text x="2" y="14">%.3g</text><text x="2" y="%d">%.3g</text>', ymax, H, ymin)
  for j, s in ipairs(series) do
    local pts = {}
    for _, p in ipairs(s.points) do pts[#pts + 1] = string.format("%.1f,%.1f", X(p[1]), Y(p[2])) end
    parts[#parts + 1] = string.format('<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>', s.colour or "#4477aa", table.concat(pts, " "))
    for _, p in ipairs(s.points) do -- markers: a single epoch is a point, not a line
      parts[#parts + 1] = string.format('<circle cx="%.1f" cy="%.1f" r="3" fill="%s"><title>%g: %.4g</title></circle>',
        X(p[1]), Y(p[2]), s.colour or "#4477aa", p[1], p[2])
    end
    parts[#parts + 1] = string.format('<text x="%d" y="%d" fill="%s">%s</text>', pad + (j - 1) * 140, H + 22, s.colour or "#4477aa", esc(s.name))
  end
  parts[#parts + 1] = "</svg>"
  return table.concat(parts, "\n")
end

--- a confusion matrix as an HTML table with shaded cells
function report.confusion_html(conf, names)
  local parts = { '<table class="conf"><tr><th>true \\ pred</th>' }
  for j = 1, #conf do parts[#parts + 1] = "<th>" .. esc(names and names[j] or (j - 1)) .. "</th>" end
  parts[#parts + 1] = "</tr>"
  for i, row in ipairs(conf) do
    local tot = 0
    for _, v in ipairs(row) do tot = tot + v end
    parts[#parts + 1] = "<tr><th>" .. esc(names and names[i] or (i - 1)) .. "</th>"
    for _, v in ipairs(row) do
      local f = tot > 0 and v / tot or 0
      parts[#parts + 1] = string.format('<td style="background:rgba(68,119,170,%.2f)">%d</td>', f, v)
    end
    parts[#parts + 1] = "</tr>"
  end
  parts[#parts + 1] = "</table>"
  return table.concat(parts)
end
-- }======================================================

-- {====================================================== files
--- JSON for plain Lua values (numbers, strings, booleans, arrays, maps)
local function json(v)
  local t = type(v)
  if t == "number" then
    if v ~= v or v == math.huge or v == -math.huge then return "null" end
    if math.type(v) == "integer" then return tostring(v) end
    return string.format("%.6g", v)
  elseif t == "string" then
    return '"' .. v:gsub('[%c"\\]', function(c) return string.format("\\u%04x", c:byte()) end) .. '"'
  elseif t == "boolean" then return tostring(v)
  elseif t == "table" then
    if #v > 0 or next(v) == nil then
      local p = {}
      for i, x in ipairs(v) do p[i] = json(x) end
      return "[" .. table.concat(p, ",") .. "]"
    end
    local keys = {}
    for k in pairs(v) do keys[#keys + 1] = tostring(k) end
    table.sort(keys)
    local p = {}
    for _, k in ipairs(keys) do p[#p + 1] = json(k) .. ":" .. json(v[k] == nil and v[tonumber(k)] or v[k]) end
    return "{" .. table.concat(p, ",") .. "}"
  end
  return "null"
end
report.json = json

--- append one JSON object as a line
function report.jsonl(path, obj)
  local f = assert(io.open(path, "a"))
  f:write(json(obj), "\n")
  f:close()
end

--- write a file atomically (temp + rename)
function report.write_file(path, text)
  local tmp = path .. ".tmp"
  local f = assert(io.open(tmp, "w"))
  f:write(text)
  f:close()
  assert(os.rename(tmp, path))
end
-- }======================================================

-- {====================================================== the pipeline's report
local CSS = [[
body{font-family:sans-serif;margin:24px;max-width:1100px;color:#222}
h1{font-size:22px} h2{font-size:18px;margin-top:28px;border-bottom:1px solid #ccc}
table{border-collapse:collapse;font-size:12px} td,th{border:1px solid #ddd;padding:3px 6px;text-align:right}
.conf td{min-width:22px} .grid{display:flex;flex-wrap:wrap;gap:14px} .card{border:1px solid #ddd;padding:8px;font-size:12px}
img{image-rendering:pixelated} .big{font-size:16px} .muted{color:#777;font-size:12px}
]]

--- report.pipeline(o, r): write r's pictures and report.html under o.out;
-- returns the path of report.html
function report.pipeline(o, r)
  local doctor = require "mdoctor.doctor"
  local out, img = o.out, o.out .. "/img"
  local H = {}
  local function w(...) for _, s in ipairs { ... } do H[#H + 1] = s end end
  local names = {}
  for c = 1, r.K do names[c] = r.names[c] or tostring(c - 1) end
  w("<!doctype html><html><head><meta charset='utf-8'><title>mdoctor report</title><style>", CSS, "</style></head><body>")
  w("<h1>Model Doctor report</h1>")
  w(string.format("<p class='big'>test top-1: base <b>%.2f%%</b> &rarr; treated <b>%.2f%%</b> (%+.2f points); top-5 %.2f%% &rarr; %.2f%%</p>",
    100 * r.before.top1, 100 * r.after.top1, 100 * (r.after.top1 - r.before.top1), 100 * r.before.top5, 100 * r.after.top5))
  if r.control then
    w(string.format("<p>control -- the same fine-tuning with cross-entropy alone: test top-1 <b>%.2f%%</b>; the treatment's own effect is %+.2f points</p>",
      100 * r.control.top1, 100 * (r.after.top1 - r.control.top1)))
  end
  if r.val_before then
    w(string.format("<p>validation top-1: %.2f%% &rarr; %.2f%%</p>", 100 * r.val_before.top1, 100 * r.val_after.top1))
  end
  w("<p class='muted'>", esc(string.format("arch %s (width %g), data %s, form %s, S_ch = {%s}, S_sp = {%s}, T=%d, J=%d, delta=%g, v=%g, theta=%g, alpha=%g, beta=%g, expand=%d px, annotated %d/class, %d s",
    o.arch, o.width, o.data, o.form, table.concat(r.ch_layers, ", "), table.concat(r.sp_layers, ", "), o.T, o.J, o.delta,
    o.v, o.theta, o.alpha, o.beta, o.expand, o.annotated, math.floor(r.seconds))), "</p>")

  w("<h2>Per-class accuracy (Fig. 4)</h2>")
  w(report.bars_svg(names, { { name = "base", values = r.before.per_class, colour = "#999999" },
    { name = "treated", values = r.after.per_class, colour = "#4477aa" } }))

  w("<h2>Diagnosis: class &times; kernel correlation (Fig. 2a)</h2>")
  w("<p class='muted'>Each row is a class, each column a kernel of the layer; brightness is the mean gradient correlation over the class's most confident training samples, normalised per class. Few bright cells per row: each class relies on few, specific kernels.</p>")
  for li, l in ipairs(r.layers) do
    local f1 = string.format("map_%d_before.png", li)
    local f2 = string.format("map_%d_after.png", li)
    local f3 = string.format("mask_%d.png", li)
    report.heatmap_png(img .. "/" .. f1, r.maps[l], { row_norm = true })
    report.heatmap_png(img .. "/" .. f2, r.maps_after[l], { row_norm = true })
    report.heatmap_png(img .. "/" .. f3, r.masks[l])
    local sp1, sp2 = doctor.sparsity(r.maps[l]), doctor.sparsity(r.maps_after[l])
    local m1, m2 = 0, 0
    for c = 1, #sp1 do m1 = m1 + sp1[c] / #sp1; m2 = m2 + sp2[c] / #sp2 end
    w(string.format("<h3>%s (%d kernels)</h3>", esc(l), r.maps[l]:size(2)))
    w(string.format("<div class='grid'><div class='card'>before treatment<br><img src='img/%s'></div><div class='card'>after treatment<br><img src='img/%s'></div><div class='card'>irrelevant kernels (constrained)<br><img src='img/%s'></div></div>", f1, f2, f3))
    w(string.format("<p class='muted'>share of kernels holding half of a class's correlation: %.1f%% before, %.1f%% after</p>", 100 * m1, 100 * m2))
  end

  w("<h2>Training</h2>")
  local base_pts, treat_pts = {}, {}
  for line in io.lines(out .. "/metrics.jsonl") do
    local phase, ep, acc = line:match('"phase":"(%w+)"'), tonumber(line:match('"epoch":([%d.]+)')), tonumber(line:match('"acc":([%d.e%-]+)'))
    if phase == "base" and ep and acc then base_pts[#base_pts + 1] = { ep, acc } end
    if phase == "treat" and ep and acc then treat_pts[#treat_pts + 1] = { ep, acc } end
  end
  w(report.lines_svg({ { name = "base train acc", points = base_pts, colour = "#999999" },
    { name = "treatment train acc", points = treat_pts, colour = "#4477aa" } }))
  w("<table><tr><th>epoch</th><th>loss</th><th>acc</th><th>CE</th><th>L_ch</th><th>L_sp</th></tr>")
  for _, h in ipairs(r.history) do
    w(string.format("<tr><td>%d</td><td>%.4f</td><td>%.2f%%</td><td>%.4f</td><td>%s</td><td>%s</td></tr>", h.epoch, h.loss,
      100 * h.acc, h.ce or 0, h.ch and string.format("%.4f", h.ch) or "-", h.sp and string.format("%.4f", h.sp) or "-"))
  end
  w("</table>")

  w("<h2>Why samples fail: per-sample diagnosis (Fig. 2b) and Grad-CAM (Fig. 5)</h2>")
  w("<p class='muted'>Misclassified test images of the base model: the image, |d y_label / d x| summed over channels, and Grad-CAM of the label at the diagnosed layer, before and after treatment. Extra kernels: used strongly by this image but not by its class; missing: used by the class but not here.</p><div class='grid'>")
  local layer = r.layers[#r.layers]
  local ds, info = r.test_ds, r.norm_info
  local mean = core.tensor(info.mean):reshape(info.c, 1, 1)
  local std = core.tensor(info.std):reshape(info.c, 1, 1)
  local shown, i = 0, 0
  while shown < (o.explain or 8) and i < #ds do
    i = i + 1
    local raw, label = ds:get(i)
    local x = (raw - mean) / std
    local e = doctor.explain(r.model, x, label, r.maps, layer, { form = o.form })
    if e.pred ~= label then
      shown = shown + 1
      local e2 = doctor.explain(r.treated, x, label, r.maps_after, layer, { form = o.form })
      local cam1 = doctor.gradcam(r.model, x, label, layer)
      local cam2 = doctor.gradcam(r.treated, x, label, layer)
      local p = string.format("s%d_", i)
      report.image_png(img .. "/" .. p .. "img.png", raw)
      report.overlay_png(img .. "/" .. p .. "sal.png", raw, e.saliency)
      report.overlay_png(img .. "/" .. p .. "cam1.png", raw, cam1)
      report.overlay_png(img .. "/" .. p .. "cam2.png", raw, cam2)
      local function ks(t)
        local s = {}
        for j = 1, math.min(#t, 8) do s[j] = tostring(t[j]) end
        return #t == 0 and "none" or (table.concat(s, " ") .. (#t > 8 and " ..." or ""))
      end
      w(string.format("<div class='card'><img src='img/%simg.png'> <img src='img/%ssal.png'> <img src='img/%scam1.png'> <img src='img/%scam2.png'><br>" ..
        "test #%d: true <b>%s</b>, base says <b>%s</b> (%.0f%%), runner-up %s; treated says <b>%s</b><br>extra kernels: %s<br>missing kernels: %s</div>",
        p, p, p, p, i, esc(names[label + 1]), esc(names[e.pred + 1]), 100 * e.probs[e.pred + 1], esc(names[e.runner_up + 1]),
        esc(names[e2.pred + 1]), ks(e.extra), ks(e.missing)))
    end
  end
  w("</div>")

  w("<h2>Confusion matrices</h2><div class='grid'><div>base", report.confusion_html(r.before.confusion, names),
    "</div><div>treated", report.confusion_html(r.after.confusion, names), "</div></div>")
  w("<h2>Files</h2><ul><li><a href='base.safetensors'>base.safetensors</a></li><li><a href='treated.safetensors'>treated.safetensors</a></li>",
    "<li><a href='diagnosis.safetensors'>diagnosis.safetensors</a> (map.&lt;layer&gt;: class &times; kernel; irrelevant.&lt;layer&gt;: the channel masks)</li>",
    "<li><a href='metrics.jsonl'>metrics.jsonl</a></li></ul></body></html>")
  local path = out .. "/report.html"
  report.write_file(path, table.concat(H, "\n"))
  return path
end
-- }======================================================

return report
