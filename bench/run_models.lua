--- bench/run_models.lua -- the whole-model benchmark: mdoctor against PyTorch.
--
--   make bench-models [THREADS="1 4 16"] [MODELS="lenet resnet18"]
--                     [KINDS="train md_last"] [STEPS=5] [WARMUP=2] [ROUNDS=3]
--   build/mdoctor bench/run_models.lua --threads "1 2" --steps 5 ...
--
-- For every model, step kind and thread count it runs bench/models.lua (one
-- mdoctor process per measurement) and, when a Python with torch is found,
-- bench/torch_models.py, alternating the two (A B, B A, A B, ... for
-- --rounds rounds), so drifts of the machine's speed fall on both alike.
-- Each process reports the median of --steps steps after --warmup steps and
-- its peak RSS; a table cell is the median over the rounds of those medians
-- (RSS: the largest peak).  Before timing, it checks per model that both
-- sides build the same layout (arch signature) and that the same weights
-- give the same logits, Model Doctor terms and double-backward gradient
-- (models.lua --export, torch_models.py --verify).
--
-- The report (markdown) goes to stdout and, with --out FILE, to FILE too;
-- progress lines go to stderr.  After the table, one check line per model
-- and step says whether mdoctor was slower with more threads (every larger
-- thread count must be at most as slow as every smaller one).
--
-- Options:
--   --threads "1 2 N"   thread counts (default: 1, 2 and the machine's cores)
--   --models "..."      lenet vgg16 resnet18 mobilenetv2 (default: all)
--   --kinds "..."       train md_last md_first fwd (default: all)
--   --steps N --warmup N --rounds N   (default 5, 2, 3)
--   --mdoctor CMD       the command that runs mdoctor (default: this one)
--   --python CMD        a Python with torch (default: /usr/bin/python3, then
--                       python3, if `import torch` works); "none": mdoctor only
--   --no-verify         skip the export/verify check
--   --strict            exit 1 when a thread check fails
--   --out FILE          also write the report to FILE
local M = {}

-- {====================================================== pure helpers
--- the median of a list of numbers (nil for an empty one)
function M.median(xs)
  if #xs == 0 then return nil end
  local s = {}
  for i, v in ipairs(xs) do s[i] = v end
  table.sort(s)
  local n = #s
  if n % 2 == 1 then return s[(n + 1) // 2] end
  return (s[n // 2] + s[n // 2 + 1]) / 2
end

--- "result k=v k=v ..." -> {k = v} (numbers converted), or nil
function M.parse_kv(line, head)
  local rest = line:match("^" .. head .. " (.*)$")
  if not rest then return nil end
  local t = {}
  for k, v in rest:gmatch("([%w_]+)=(%S+)") do t[k] = tonumber(v) or v end
  return t
end

--- the thread check: times = {[threads] = ms}; every larger thread count
-- must be no slower than every smaller one.  Returns ok, and the list of
-- offending pairs {lo, hi, t_lo, t_hi}.
function M.thread_check(times)
  local ts = {}
  for t in pairs(times) do ts[#ts + 1] = t end
  table.sort(ts)
  local bad = {}
  for i = 1, #ts do
    for j = i + 1, #ts do
      local a, b = times[ts[i]], times[ts[j]]
      if b > a then bad[#bad + 1] = { ts[i], ts[j], a, b } end
    end
  end
  return #bad == 0, bad
end

--- the list of words in a string ("1 2 16" -> {"1", "2", "16"})
function M.words(s)
  local out = {}
  for w in tostring(s):gmatch("[^%s,]+") do out[#out + 1] = w end
  return out
end

--- the default thread counts: 1, 2 and the core count, without repeats
function M.default_threads(cores)
  local out, seen = {}, {}
  for _, t in ipairs { 1, 2, cores } do
    if t >= 1 and t <= math.max(cores, 1) and not seen[t] then seen[t] = true; out[#out + 1] = t end
  end
  return out
end

--- a word quoted for /bin/sh
function M.shq(s)
  if s:match("^[%w%./_=:+-]+$") then return s end
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

function M.fmt_ms(v)
  if not v then return "–" end
  if v >= 100 then return string.format("%.0f", v) end
  if v >= 10 then return string.format("%.1f", v) end
  return string.format("%.2f", v)
end
-- }======================================================

-- {====================================================== running things
local function sh(cmd)
  local p = io.popen(cmd .. " 2>&1")
  local out = p:read("a")
  local ok, how, code = p:close()
  return out, ok, code, how
end

local function read_file(path)
  local f = io.open(path)
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local function machine()
  local cpu = (read_file("/proc/cpuinfo") or ""):match("model name%s*:%s*([^\n]+)") or "unknown CPU"
  local cores = tonumber((sh("nproc"))) or 1
  local mem = (read_file("/proc/meminfo") or ""):match("MemTotal:%s*(%d+)")
  local flags = (read_file("/proc/cpuinfo") or ""):match("flags%s*:%s*([^\n]+)") or ""
  local isa = flags:match("avx512f") and "AVX-512" or (flags:match("avx2") and "AVX2" or "no AVX2")
  return { cpu = cpu, cores = cores, mem_gb = mem and tonumber(mem) / 2 ^ 20 or 0, isa = isa }
end

local function loadavg()
  local s = read_file("/proc/loadavg") or "? ? ?"
  local a, b, c = s:match("(%S+) (%S+) (%S+)")
  return string.format("%s %s %s", a or "?", b or "?", c or "?")
end

local function envs(t)
  local n = tostring(t)
  return "env MD_NUM_THREADS=" .. n .. " OMP_NUM_THREADS=" .. n .. " BLIS_NUM_THREADS=" .. n ..
    " OPENBLAS_NUM_THREADS=" .. n .. " MKL_NUM_THREADS=" .. n .. " "
end
-- }======================================================

local function parse_args(args)
  local o = { steps = 5, warmup = 2, rounds = 3, verify = true, strict = false }
  local i = 1
  local valued = { threads = 1, models = 1, kinds = 1, steps = 1, warmup = 1, rounds = 1, mdoctor = 1, python = 1,
    out = 1 }
  while i <= #args do
    local a = args[i]
    local k, v = a:match("^%-%-([%w_-]+)=(.*)$")
    if not k then k = a:match("^%-%-([%w_-]+)$") end
    if k == "no-verify" then o.verify = false
    elseif k == "strict" then o.strict = true
    elseif k == "help" then
      for line in (read_file(arg[0]) or ""):gmatch("[^\n]*") do
        if not line:match("^%-%-") then break end
        print((line:gsub("^%-%-%-? ?", "")))
      end
      os.exit(0)
    elseif k and valued[k] then
      if v == nil then i = i + 1; v = args[i] end
      if v == nil then error("run_models: option --" .. k .. " needs a value", 0) end
      o[k] = v
    else
      error("run_models: unknown argument '" .. a .. "' (--help lists the options)", 0)
    end
    i = i + 1
  end
  for _, k in ipairs { "steps", "warmup", "rounds" } do
    local n = math.tointeger(tonumber(o[k]))
    if not n or n < (k == "warmup" and 0 or 1) then
      error("run_models: --" .. k .. " takes a whole number" .. (k == "warmup" and " >= 0" or " >= 1") .. ", got '" ..
        tostring(o[k]) .. "'", 0)
    end
    o[k] = n
  end
  return o
end

local MODELS = { "lenet", "vgg16", "resnet18", "mobilenetv2" }
local KINDS = { "train", "md_last", "md_first", "fwd" }
local KIND_NAME = { train = "train", md_last = "MD, last conv", md_first = "MD, first conv", fwd = "forward (eval)" }

local function main(args)
  local o = parse_args(args)
  local t_start = os.time()
  local here = (arg[0]:match("^(.*)/[^/]*$") or ".")
  local models_lua, torch_py = here .. "/models.lua", here .. "/torch_models.py"
  local mdcmd = o.mdoctor or M.shq(arg[-1] or "mdoctor")
  local mach = machine()
  local threads = {}
  if o.threads then
    for _, w in ipairs(M.words(o.threads)) do
      local n = math.tointeger(tonumber(w))
      if not n or n < 1 then error("run_models: --threads takes whole numbers >= 1, got '" .. w .. "'", 0) end
      threads[#threads + 1] = n
    end
  else
    threads = M.default_threads(mach.cores)
  end
  local models = o.models and M.words(o.models) or MODELS
  local kinds = o.kinds and M.words(o.kinds) or KINDS
  local known = {}
  for _, m in ipairs(MODELS) do known[m] = true end
  for _, k in ipairs(KINDS) do known[k] = true end
  for _, w in ipairs(models) do if not known[w] then error("run_models: unknown model '" .. w .. "'", 0) end end
  for _, w in ipairs(kinds) do if not known[w] then error("run_models: unknown step kind '" .. w .. "'", 0) end end

  local report = {}
  local outf = o.out and assert(io.open(o.out, "w"))
  local function say(s)
    s = s or ""
    report[#report + 1] = s
    print(s)
    io.stdout:flush()
    if outf then outf:write(s, "\n"); outf:flush() end
  end
  local function progress(s) io.stderr:write(s, "\n"); io.stderr:flush() end

  -- a Python with torch
  local py = o.python
  if py == "none" then py = nil
  elseif not py then
    for _, cand in ipairs { "/usr/bin/python3", "python3" } do
      local _, ok = sh(cand .. " -c 'import torch' >/dev/null")
      if ok then py = cand break end
    end
  end
  local function md_run(t, extra)
    return sh(envs(t) .. mdcmd .. " " .. M.shq(models_lua) .. " " .. extra)
  end
  local function py_run(t, extra)
    return sh(envs(t) .. py .. " " .. M.shq(torch_py) .. " " .. extra)
  end
  local function lines_of(out, head)
    local r
    for line in out:gmatch("[^\n]+") do
      if line:sub(1, #head + 1) == head .. " " then r = line:sub(#head + 2) end
    end
    return r
  end

  say("## Whole models: mdoctor against PyTorch (bench/run_models.lua)")
  say()
  say(string.format("- date: %s", os.date("!%Y-%m-%d %H:%M UTC")))
  say(string.format("- machine: %s, %d cores available (nproc), %s, %.0f GB memory", mach.cpu, mach.cores, mach.isa,
    mach.mem_gb))
  say(string.format("- load average at start: %s", loadavg()))
  local out0, ok0 = md_run(1, "--model lenet --arch")
  if not ok0 then error("run_models: mdoctor does not run (" .. mdcmd .. "):\n" .. out0, 0) end
  say("- mdoctor: " .. (lines_of(out0, "backend") or "?"):gsub("^mdoctor ", ""):gsub(", 1 thread$", ""))
  if py then
    local outp, okp = py_run(1, "--model lenet --arch")
    if okp then say("- " .. (lines_of(outp, "backend") or "?"):gsub("; 1 thread$", ""))
    else say("- PyTorch: " .. py .. " failed (" .. outp:gsub("\n", " "):sub(1, 200) .. "); mdoctor only"); py = nil end
  else
    say("- PyTorch: not found (no Python with torch); mdoctor's numbers only")
  end
  say(string.format("- protocol: %d warm-up + %d timed steps per process, %d rounds%s; batch 32 (LeNet 64), "
    .. "CIFAR size (LeNet 1x28x28); SGD lr 1e-3 momentum 0.9", o.warmup, o.steps, o.rounds,
    py and " alternating mdoctor and PyTorch processes" or ""))
  say()

  -- the layouts must agree, and the same weights must compute the same thing
  local comparable = {}
  if py then
    say("| model | parameters (mdoctor) | parameters (PyTorch) | layout signature | same weights: logits, MD terms, gradient |")
    say("|---|---:|---:|---|---|")
    for _, m in ipairs(models) do
      local a = M.parse_kv("arch " .. (lines_of((md_run(1, "--model " .. m .. " --arch")), "arch") or ""), "arch") or {}
      local b = M.parse_kv("arch " .. (lines_of((py_run(1, "--model " .. m .. " --arch")), "arch") or ""), "arch") or {}
      local same = a.sig and a.sig == b.sig and a.params == b.params
      local ver = "not checked"
      if same and o.verify then
        local f = os.tmpname()
        local eo, eok = md_run(1, "--model " .. m .. " --export " .. M.shq(f))
        local vo, vok = "", false
        if eok then vo, vok = py_run(1, "--model " .. m .. " --verify " .. M.shq(f)) end
        os.remove(f)
        if vok then ver = "equal"
        else
          ver = "DIFFERENT"
          progress((eok and vo or eo))
        end
        same = vok
      end
      comparable[m] = same
      say(string.format("| %s | %s | %s | %s | %s |", m, tostring(a.params), tostring(b.params),
        a.sig == b.sig and ("equal (" .. tostring(a.sig) .. ")") or ("DIFFERENT (" .. tostring(a.sig) .. " / " ..
        tostring(b.sig) .. ")"), ver))
      if not same then
        progress("run_models: " .. m .. ": the two models differ; PyTorch is not timed for it "
          .. "(compare `models.lua --dump-arch` with `torch_models.py --dump-arch`)")
      end
    end
    say()
  end

  -- the measurements
  local res = {} -- res[m][k][t] = {md = {...}, pt = {...}}
  local total = #models * #kinds * #threads * o.rounds
  local done = 0
  local common = string.format("--steps %d --warmup %d", o.steps, o.warmup)
  local function one(impl, m, k, t)
    local extra = string.format("--model %s --step %s --threads %d %s", m, k, t, common)
    local out, ok = (impl == "md" and md_run or py_run)(t, extra)
    local r = ok and M.parse_kv("result " .. (lines_of(out, "result") or ""), "result")
    if not r or not r.median_ms then
      progress(string.format("run_models: %s %s %s %d threads failed:\n%s", impl, m, k, t, out))
      return nil
    end
    return r
  end
  for _, m in ipairs(models) do
    res[m] = {}
    for _, k in ipairs(kinds) do
      res[m][k] = {}
      for _, t in ipairs(threads) do
        local cell = { md = {}, pt = {} }
        res[m][k][t] = cell
        for r = 1, o.rounds do
          local order = (py and comparable[m]) and ((r % 2 == 1) and { "md", "pt" } or { "pt", "md" }) or { "md" }
          for _, impl in ipairs(order) do
            local x = one(impl, m, k, t)
            if x then cell[impl][#cell[impl] + 1] = x end
          end
          done = done + 1
          local last_md, last_pt = cell.md[#cell.md], cell.pt[#cell.pt]
          progress(string.format("[%d/%d %ds] %s %s %dt round %d: mdoctor %s ms%s", done, total,
            os.time() - t_start, m, k, t, r, last_md and M.fmt_ms(last_md.median_ms) or "failed",
            (py and comparable[m]) and (", PyTorch " .. (last_pt and M.fmt_ms(last_pt.median_ms) or "failed") .. " ms")
            or ""))
        end
      end
    end
  end

  local function summary(list)
    if #list == 0 then return nil end
    local meds, mins, rss = {}, {}, 0
    for i, x in ipairs(list) do
      meds[i], mins[i] = x.median_ms, x.min_ms
      rss = math.max(rss, x.rss_mb or 0)
    end
    local mn = math.huge
    for _, v in ipairs(mins) do mn = math.min(mn, v) end
    return { ms = M.median(meds), min = mn, rss = rss, n = #list }
  end

  say(string.format("Time per step in ms: the median over %d processes of each one's median of %d steps%s; "
    .. "peak RSS in MB (the largest of the processes).", o.rounds, o.steps,
    py and "; ratio = mdoctor / PyTorch (below 1: mdoctor is faster)" or ""))
  say()
  if py then
    say("| model | step | threads | mdoctor ms | PyTorch ms | ratio | mdoctor RSS | PyTorch RSS |")
    say("|---|---|---:|---:|---:|---:|---:|---:|")
  else
    say("| model | step | threads | mdoctor ms | min ms | peak RSS MB |")
    say("|---|---|---:|---:|---:|---:|")
  end
  local sums = {}
  for _, m in ipairs(models) do
    sums[m] = {}
    for _, k in ipairs(kinds) do
      sums[m][k] = {}
      for _, t in ipairs(threads) do
        local a, b = summary(res[m][k][t].md), summary(res[m][k][t].pt)
        sums[m][k][t] = a
        if py then
          say(string.format("| %s | %s | %d | %s | %s | %s | %s | %s |", m, KIND_NAME[k], t, M.fmt_ms(a and a.ms),
            M.fmt_ms(b and b.ms), (a and b) and string.format("%.2f", a.ms / b.ms) or "–",
            a and string.format("%.0f", a.rss) or "–", b and string.format("%.0f", b.rss) or "–"))
        else
          say(string.format("| %s | %s | %d | %s | %s | %s |", m, KIND_NAME[k], t, M.fmt_ms(a and a.ms),
            M.fmt_ms(a and a.min), a and string.format("%.0f", a.rss) or "–"))
        end
      end
    end
  end
  say()

  -- more threads must not be slower
  local nbad, nchecked = 0, 0
  if #threads > 1 then
    say("Thread check (mdoctor: a step with more threads must take at most as long as with fewer):")
    say()
    for _, m in ipairs(models) do
      for _, k in ipairs(kinds) do
        local times, parts = {}, {}
        for _, t in ipairs(threads) do
          local a = sums[m][k][t]
          if a then times[t] = a.ms; parts[#parts + 1] = string.format("%d: %s", t, M.fmt_ms(a.ms)) end
        end
        local ok, bad = M.thread_check(times)
        nchecked = nchecked + 1
        local why = {}
        for _, b in ipairs(bad) do
          why[#why + 1] = string.format("%d threads %s ms > %d thread%s %s ms (+%.0f%%)", b[2], M.fmt_ms(b[4]), b[1],
            b[1] == 1 and "" or "s", M.fmt_ms(b[3]), 100 * (b[4] / b[3] - 1))
        end
        if not ok then nbad = nbad + 1 end
        say(string.format("- %s %s: %s ms: %s", m, KIND_NAME[k], table.concat(parts, ", "),
          ok and "ok" or ("SLOWER with more threads: " .. table.concat(why, "; "))))
      end
    end
    say()
    say(string.format("Thread check: %d of %d model/step pairs %s.", nchecked - nbad, nchecked,
      nbad == 0 and "ok (never slower with more threads)" or "ok, the others were slower with more threads"))
  end
  say()
  say(string.format("Load average at end: %s; the run took %d s.", loadavg(), os.time() - t_start))
  if outf then outf:close() end
  if o.strict and nbad > 0 then os.exit(1) end
end

-- run as a script (not when a test loads this file for its helpers)
local script = arg and arg[0] or ""
if script == "run_models.lua" or script:match("/run_models%.lua$") then
  local ok, err = pcall(main, arg)
  if not ok then
    io.stderr:write(tostring(err), "\n")
    os.exit(1)
  end
end

return M
