--- tests/lua/test_shell.lua -- the `mdoctor` shell from the outside, without a
-- terminal: -e, -v, -h, bad options, scripts with arguments and errors, exit
-- codes, stdin as a script, module paths from another directory; the progress
-- line of md.util; and the first recipe (recipes/lenet_random.lua) with tiny
-- settings, whose loss must go down.  The interactive REPL (readline, TAB,
-- Ctrl-C, history) is tests/c/test_repl.c.
local T = dofile("tests/lua/harness.lua")
local md = require "mdoctor"

local exe, q = T.exe, T.shq
local function abspath(p)
  if p:sub(1, 1) == "/" then return p end
  local h = io.popen("pwd")
  local cwd = h:read("l")
  h:close()
  return cwd .. "/" .. p
end
exe = abspath(exe)

local dir = T.tmpdir()
local function slurp(path)
  local f = io.open(path, "rb")
  if not f then return "" end
  local s = f:read("a")
  f:close()
  return s
end
local spit = T.spit

--- run(args, {stdin=, env=, cwd=}) -> status, stdout, stderr; args are quoted
local nrun = 0
local function run(args, o)
  o = o or {}
  nrun = nrun + 1
  local inf, outf, errf = dir .. "/in" .. nrun, dir .. "/out" .. nrun, dir .. "/err" .. nrun
  spit(inf, o.stdin or "")
  local parts = {}
  for _, a in ipairs(args) do parts[#parts + 1] = q(a) end
  local cmd = string.format("%s%s %s %s < %s > %s 2> %s", o.cwd and ("cd " .. q(o.cwd) .. " && ") or "",
    o.env or "", q(exe), table.concat(parts, " "), q(inf), q(outf), q(errf))
  local ok, how, code = os.execute(cmd)
  local status = how == "exit" and code or 128 + (code or 0)
  if ok == true then status = 0 end
  return status, slurp(outf), slurp(errf)
end

local has = T.has

-- {====================================================== options
do
  local st, out, err = run { "-e", "print(1)" }
  T.check(st == 0 and out == "1\n" and err == "", "-e 'print(1)'")
  st, out = run { "-e", "x = 20", "-e", "print(x + 22, md.ones(2, 2):sum():item())" }
  T.check(st == 0 and out == "42\t4.0\n", "two -e in order, md preloaded")
  st, out = run { "-v" }
  T.check(st == 0 and out == "mdoctor " .. md.version .. "\n", "-v prints the version")
  st, out = run { "--version" }
  T.check(st == 0 and has(out, md.version), "--version")
  st, out, err = run { "-h" }
  T.check(st == 0 and has(out, "usage:") and has(out, "-e code") and has(out, "-i") and err == "", "-h: usage on stdout, status 0")
  st, out, err = run { "--no-such-option" }
  T.check(st ~= 0 and has(err, "'--no-such-option'") and has(err, "usage:") and out == "",
    "unknown option: status non-zero, message and usage on stderr")
  st, out, err = run { "-e" }
  T.check(st ~= 0 and has(err, "'-e' needs an argument"), "-e without an argument")
  st, out, err = run { "-e", "error('raised here')" }
  T.check(st == 1 and has(err, "raised here") and has(err, "stack traceback:"), "-e error: status 1 and traceback")
  st, out, err = run { "-e", "x = = 1" }
  T.check(st == 1 and has(err, "unexpected symbol"), "-e syntax error: status 1")
  st = run { "-e", "os.exit(3)" }
  T.check(st == 3, "os.exit(3) is the status")
  st = run { "-e", "os.exit(false)" }
  T.check(st == 1, "os.exit(false) is status 1")
  -- -e runs before the script; the script still gets its arguments
  local s = spit(dir .. "/pre.lua", "print(pre, ...)\n")
  st, out = run { "-e", "pre = 'set by -e'", s, "a" }
  T.check(st == 0 and out == "set by -e\ta\n", "-e runs before the script")
end
-- }======================================================

-- {====================================================== scripts
do
  local s = spit(dir .. "/args.lua", [[
print("arg0", arg[0])
print("args", #arg, arg[1], arg[2], arg[3])
print("dots", select("#", ...), ...)
print("neg", arg[-1] ~= nil)
return 0
]])
  local st, out, err = run { s, "one", "two words", "-x" }
  T.check(st == 0, "script with arguments: status 0 " .. err)
  T.check(has(out, "arg0\t" .. s .. "\n"), "script: arg[0] is the script")
  T.check(has(out, "args\t3\tone\ttwo words\t-x\n"), "script: arg[1..n], options after the script are its own")
  T.check(has(out, "dots\t3\tone\ttwo words\t-x\n"), "script: ... holds the arguments")
  T.check(has(out, "neg\ttrue\n"), "script: arg[-1] is the interpreter")
  st, out = run { "--", s, "-v" }
  T.check(st == 0 and has(out, "args\t1\t-v\t"), "-- ends the options")

  local bad = spit(dir .. "/bad.lua", [[
print("started")
local function deep(n) if n == 0 then error("failure in the script") end return deep(n - 1) end
local function outer() deep(2) end
outer()
print("never")
]])
  st, out, err = run { bad }
  T.check(st == 1, "failing script: status 1")
  T.check(out == "started\n", "failing script: stdout up to the error")
  T.check(has(err, "bad.lua:2: failure in the script"), "failing script: message with file:line on stderr")
  T.check(has(err, "stack traceback:") and has(err, "in local 'outer'"), "failing script: traceback on stderr")

  local coreerr = spit(dir .. "/coreerr.lua", "local y = md.ones(2, 3) + md.ones(4, 5)\n")
  st, out, err = run { coreerr }
  T.check(st == 1 and has(err, "coreerr.lua:1:") and has(err, "stack traceback:"), "a core error in a script: status 1, located")

  st, out, err = run { dir .. "/does-not-exist.lua" }
  T.check(st == 1 and has(err, "cannot open"), "missing script: status 1, 'cannot open'")

  -- a script that returns normally after printing to stderr keeps status 0
  local warn = spit(dir .. "/warn.lua", "io.stderr:write('a note\\n') print('done')\n")
  st, out, err = run { warn }
  T.check(st == 0 and out == "done\n" and err == "a note\n", "stderr output does not fail a script")
end
-- }======================================================

-- {====================================================== stdin
do
  local st, out, err = run({}, { stdin = "local a = 6\nprint(a * 7)\nprint(md.zeros(3):numel())\n" })
  T.check(st == 0 and out == "42\n3\n", "stdin is a script when it is not a terminal " .. err)
  st, out = run({ "-", "p", "q" }, { stdin = "print(arg[0], ...)\n" })
  T.check(st == 0 and out == "-\tp\tq\n", "'-' reads the script from stdin, with arguments")
  st, out, err = run({}, { stdin = "print('ok so far')\nerror('stdin fails')\n" })
  T.check(st == 1 and out == "ok so far\n" and has(err, "stdin fails"), "error in a stdin script: status 1")
  st, out = run({}, { stdin = "" })
  T.check(st == 0 and out == "", "empty stdin: nothing, status 0")
  -- -e alone does not read stdin
  st, out = run({ "-e", "print('only -e')" }, { stdin = "print('from stdin')\n" })
  T.check(st == 0 and out == "only -e\n", "-e alone does not read stdin")
end
-- }======================================================

-- {====================================================== paths
do
  -- the Lua library is found next to the binary, whatever the working directory
  local st, out, err = run({ "-e", "print(type(md.nn.Conv2d), type(md.optim.SGD), type(md.util.progress))" }, { cwd = "/" })
  T.check(st == 0 and out == "table\tfunction\tfunction\n", "library found from another directory " .. err)
  st, out = run({ "-e", "print(package.path:find('recipes', 1, true) ~= nil)" }, { cwd = "/" })
  T.check(st == 0 and out == "true\n", "recipes/ is on package.path")
  -- the recipe runs from another directory by its absolute path
  st, out, err = run({ abspath("recipes/lenet_random.lua"), "--help" }, { cwd = "/" })
  T.check(st == 0 and has(out, "usage:"), "recipe --help from another directory")
end
-- }======================================================

-- {====================================================== util.progress
do
  local util = md.util
  T.check(util.hms(0) == "0:00" and util.hms(65) == "1:05" and util.hms(3725) == "1:02:05", "util.hms")
  T.check(util.hms(0 / 0) == "--:--" and util.hms(math.huge) == "--:--", "util.hms of unknown")
  -- capture what the progress line writes on stderr
  local real = io.stderr
  local lines = {}
  io.stderr = { write = function(self, ...) for _, s in ipairs { ... } do lines[#lines + 1] = s end return self end,
    flush = function() end }
  local ok, e = pcall(function()
    local p = util.progress { total = 120, label = "epoch 2/5", unit = "img" }
    p.tty, p.every = false, 1e9 -- a log: first update, then only done()
    p:update(7, 448, { loss = 1.23456, acc = 0.5, lr = 0.01 })
    p:update(8, 64, { loss = 1.2 }) -- within `every`: quiet
    p:done { loss = 1.1, acc = 0.625 }
    local q = util.progress { label = "stream" } -- no total
    q.tty, q.every = false, 1e9
    q:update(3, 30)
    q:done()
    local r = util.progress { total = 5, quiet = true }
    r:update(1, 1, { loss = 1 })
    r:done()
  end)
  io.stderr = real
  T.check(ok, "progress runs " .. tostring(e))
  local text = table.concat(lines)
  local l = {}
  for s in text:gmatch("[^\n]+") do l[#l + 1] = s end
  T.check(#l == 4, "progress: one line per shown update and per done() (got " .. #l .. ")")
  l[1], l[2], l[3], l[4] = l[1] or "", l[2] or "", l[3] or "", l[4] or ""
  T.check(l[1]:match("^epoch 2/5 %[  7/120%]  loss 1%.2346  acc 50%.00%%  lr 0%.01  %d+ img/s  ETA %d+:%d%d$") ~= nil,
    "progress line: label, [done/total], loss, acc, other stats, rate, ETA [" .. l[1] .. "]")
  T.check(l[2]:match("^epoch 2/5 %[120/120%]  loss 1%.1000  acc 62%.50%%  %d+ img/s  in %d+:%d%d$") ~= nil,
    "progress done(): totals and elapsed [" .. l[2] .. "]")
  T.check(l[3]:match("^stream %[3%]  %d+ img/s  ETA %-%-:%-%-$") ~= nil, "progress without a total [" .. l[3] .. "]")
  T.check(l[4]:match("^stream %[3%]  %d+ img/s  in ") ~= nil, "progress without a total, done [" .. l[4] .. "]")
  -- Ctrl-C (SIGINT) while a script runs raises "interrupted!" in Lua; the
  -- script can catch it and go on.  Only under the mdoctor shell (a stock
  -- lua would die of the signal).
  if arg and arg[-1] and arg[-1]:match("mdoctor$") then
    local f = io.open("/proc/self/stat")
    local pid = f and f:read("n")
    if f then f:close() end
    local ok2, msg = pcall(function()
      -- later, from the background: system() ignores SIGINT while it waits
      os.execute("(sleep 0.2; kill -INT " .. pid .. ") &")
      local t0 = md.now()
      while md.now() - t0 < 5 do end -- the hook raises long before
      return "not interrupted"
    end)
    T.check(not ok2 and tostring(msg):find("interrupted!", 1, true) ~= nil, "SIGINT in a script raises 'interrupted!' (" .. tostring(msg) .. ")")
    T.check(md.ones(2):sum():item() == 2, "the script goes on after a caught interrupt")
  end
end
-- }======================================================

-- {====================================================== the recipe
do
  local recipe = "recipes/lenet_random.lua"
  local st, out, err = run { recipe, "--epochs", "6", "--steps", "12", "--batch", "32", "--lr", "0.1", "--seed", "1",
    "--test", "512", "--threads", "1" }
  T.check(st == 0, "recipe runs with tiny settings, status 0 " .. (st ~= 0 and err or ""))
  local losses, accs = {}, {}
  for e, n, loss, acc in out:gmatch("epoch (%d+)/(%d+)  loss ([%d.]+)  acc ([%d.]+)%%") do
    losses[#losses + 1], accs[#accs + 1] = tonumber(loss), tonumber(acc)
  end
  T.check(#losses == 6, "recipe: one line per epoch (" .. #losses .. ")")
  local first, last = losses[1] or 0, losses[#losses] or 0
  T.check(first > 2.2 and first < 2.4, "recipe: first epoch near ln(10) = 2.303 (" .. first .. ")")
  T.check(last < first - 0.05, string.format("recipe: the loss goes down (%.4f -> %.4f)", first, last))
  local held = tonumber(out:match("held%-out acc ([%d.]+)%%"))
  T.check(held and held > 15, "recipe: held-out accuracy above chance 10% (" .. tostring(held) .. ")")
  T.check(has(out, "summary: loss"), "recipe: final summary")
  -- the progress line went to stderr (not a terminal: whole lines)
  T.check(err:match("epoch 1/6 %[ 1/12%]  loss [%d.]+  acc [%d.]+%%  %d+ img/s  ETA") ~= nil, "recipe: progress line on stderr")
  T.check(err:match("epoch 6/6 %[12/12%]  loss [%d.]+  acc [%d.]+%%  %d+ img/s  in %d+:%d%d") ~= nil, "recipe: progress done line")
  -- the same seed, the same run
  local st2, out2 = run { recipe, "--epochs", "2", "--steps", "3", "--batch", "16", "--seed", "7", "--test", "0", "--quiet", "--threads", "1" }
  local st3, out3 = run { recipe, "--epochs=2", "--steps=3", "--batch=16", "--seed=7", "--test=0", "--quiet", "--threads=1" }
  local function epochs(s) return (s:gsub("summary:[^\n]*", "")) end
  T.check(st2 == 0 and st3 == 0 and epochs(out2) == epochs(out3), "recipe: --k v and --k=v agree; a seed repeats")
  T.check(not has(out2, "held-out"), "recipe: --test 0 skips the held-out set")
  -- options
  st, out, err = run { recipe, "--epoch", "3" }
  T.check(st ~= 0 and has(err, "unknown option '--epoch'") and has(err, "usage:"), "recipe: unknown option -> status 1 with usage")
  st, out, err = run { recipe, "--lr" }
  T.check(st ~= 0 and has(err, "--lr needs a value"), "recipe: option without a value")
  st, out, err = run { recipe, "--steps", "many" }
  T.check(st ~= 0 and has(err, "a number expected"), "recipe: option not a number")
  st, out, err = run { recipe, "--steps", "0" }
  T.check(st ~= 0 and has(err, "at least 1"), "recipe: --steps 0 refused")
  st, out = run { recipe, "-h" }
  T.check(st == 0 and has(out, "--epochs N") and has(out, "--lr X"), "recipe: -h prints usage, status 0")
end
-- }======================================================

T.cleanup()
T.summary()
