/*
** test_repl.c -- the `mdoctor` shell driven as a person uses it.
**
** The REPL runs on a pseudo-terminal (forkpty) with HOME in a fresh temporary
** directory and TERM=dumb; we type lines, TAB and Ctrl-C/Ctrl-D and read the
** screen with deadlines (never hang: every wait polls until a deadline and
** the child is killed at the end).  The command-line cases (-e, -v, -h, bad
** options, scripts with arguments and errors, -i, stdin as a script) run
** through pipes.  The binary is <build>/mdoctor next to <build>/tests/ (or
** $MDOCTOR).
*/
#include "check.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

static char mdoctor[4096];
static char home[256];

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}
static void sleep_s(double s) {
  struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
  while (nanosleep(&ts, &ts) && errno == EINTR) {}
}

/* {====================================================== a session on a pty */
typedef struct {
  pid_t pid;
  int fd;
  char *out; /* everything the child wrote, NUL-terminated */
  size_t len, cap, pos; /* pos: where the next expect() starts looking */
  int eof;
} session;

static void child_env(void) {
  setenv("HOME", home, 1);
  setenv("TERM", "dumb", 1);
  setenv("INPUTRC", "/dev/null", 1); /* no personal key bindings */
  unsetenv("MDOCTOR_HOME");
}

static void start(session *s, char *const argv[]) {
  memset(s, 0, sizeof *s);
  s->cap = 1 << 16;
  s->out = calloc(s->cap, 1);
  struct winsize ws = {.ws_row = 50, .ws_col = 200};
  s->pid = forkpty(&s->fd, NULL, NULL, &ws);
  if (s->pid == 0) {
    child_env();
    execv(mdoctor, argv);
    _exit(127);
  }
  if (s->pid < 0) {
    s->eof = 1;
    return;
  }
  fcntl(s->fd, F_SETFL, fcntl(s->fd, F_GETFL) | O_NONBLOCK);
}

/* read what is there, waiting at most `wait` seconds for the first byte */
static void pump(session *s, double wait) {
  if (s->eof) return;
  struct pollfd p = {.fd = s->fd, .events = POLLIN};
  int ms = (int)(wait * 1000);
  if (poll(&p, 1, ms) <= 0) return;
  for (;;) {
    char buf[4096];
    ssize_t n = read(s->fd, buf, sizeof buf);
    if (n > 0) {
      if (s->len + (size_t)n + 1 > s->cap) {
        while (s->len + (size_t)n + 1 > s->cap) s->cap *= 2;
        s->out = realloc(s->out, s->cap);
      }
      memcpy(s->out + s->len, buf, (size_t)n);
      s->len += (size_t)n;
      s->out[s->len] = 0;
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    s->eof = 1; /* EIO: the child closed the terminal */
    return;
  }
}

/* wait until `want` shows up after the last match; moves past it */
static int expect(session *s, const char *want, double timeout) {
  double end = now() + timeout;
  for (;;) {
    char *hit = strstr(s->out + s->pos, want);
    if (hit) {
      s->pos = (size_t)(hit - s->out) + strlen(want);
      return 1;
    }
    if (s->eof || now() > end) return 0;
    pump(s, 0.05);
  }
}

/* the screen since `from`, control characters escaped, for failure notes */
static const char *tail(session *s, size_t from) {
  static char buf[1200];
  size_t k = 0;
  if (s->len > from + 500) from = s->len - 500;
  for (size_t i = from; i < s->len && k < sizeof buf - 8; i++) {
    unsigned char c = (unsigned char)s->out[i];
    if (c == '\n') k += (size_t)snprintf(buf + k, sizeof buf - k, "\\n");
    else if (c == '\r') k += (size_t)snprintf(buf + k, sizeof buf - k, "\\r");
    else if (c < 32 || c == 127) k += (size_t)snprintf(buf + k, sizeof buf - k, "\\x%02x", c);
    else buf[k++] = (char)c;
  }
  buf[k] = 0;
  return buf;
}

static void type(session *s, const char *text) {
  size_t n = strlen(text);
  double end = now() + 5;
  while (n > 0 && now() < end) {
    ssize_t w = write(s->fd, text, n);
    if (w > 0) {
      text += w;
      n -= (size_t)w;
    } else
      pump(s, 0.01);
  }
}

/* type text, then expect each of the NULL-terminated strings in order */
static int step(session *s, const char *name, const char *text, double timeout, ...) {
  size_t from = s->pos;
  if (text) type(s, text);
  va_list ap;
  va_start(ap, timeout);
  int ok = 1;
  const char *miss = NULL;
  for (const char *w; (w = va_arg(ap, const char *));)
    if (!expect(s, w, timeout)) {
      ok = 0;
      miss = w;
      break;
    }
  va_end(ap);
  if (ok)
    report(1, name, "%s", "");
  else
    report(0, name, "did not see \"%s\"; screen: \"%s\"", miss, tail(s, from));
  return ok;
}

/* wait for the child to end (up to timeout, then kill it); its status */
static int finish(session *s, double timeout) {
  int st = -1;
  double end = now() + timeout;
  for (;;) {
    pump(s, 0.02);
    pid_t r = waitpid(s->pid, &st, WNOHANG);
    if (r == s->pid) break;
    if (r < 0) {
      st = -1;
      break;
    }
    if (now() > end) {
      kill(s->pid, SIGKILL);
      waitpid(s->pid, &st, 0);
      st = -1;
      break;
    }
  }
  close(s->fd);
  free(s->out);
  return st;
}
/* }====================================================== */

/* {====================================================== pipes */
typedef struct {
  int status;
  char out[65536], err[65536];
} result;

/* run mdoctor with argv, `in` on stdin (not a tty), capture both outputs */
static void run(result *r, char *const argv[], const char *in, double timeout) {
  int pi[2], po[2], pe[2];
  memset(r, 0, sizeof *r);
  r->status = -1;
  if (pipe(pi) || pipe(po) || pipe(pe)) return;
  pid_t pid = fork();
  if (pid == 0) {
    dup2(pi[0], 0);
    dup2(po[1], 1);
    dup2(pe[1], 2);
    close(pi[0]), close(pi[1]), close(po[0]), close(po[1]), close(pe[0]), close(pe[1]);
    child_env();
    execv(mdoctor, argv);
    _exit(127);
  }
  close(pi[0]), close(po[1]), close(pe[1]);
  if (in) (void)!write(pi[1], in, strlen(in)); /* small: fits the pipe */
  close(pi[1]);
  size_t no = 0, ne = 0;
  int open_o = 1, open_e = 1;
  double end = now() + timeout;
  while ((open_o || open_e) && now() < end) {
    struct pollfd p[2] = {{.fd = open_o ? po[0] : -1, .events = POLLIN},
                          {.fd = open_e ? pe[0] : -1, .events = POLLIN}};
    if (poll(p, 2, 50) <= 0) continue;
    if (p[0].revents) {
      ssize_t n = read(po[0], r->out + no, sizeof r->out - 1 - no);
      if (n <= 0) open_o = 0;
      else no += (size_t)n;
    }
    if (p[1].revents) {
      ssize_t n = read(pe[0], r->err + ne, sizeof r->err - 1 - ne);
      if (n <= 0) open_e = 0;
      else ne += (size_t)n;
    }
  }
  close(po[0]), close(pe[0]);
  int st;
  while (now() < end && waitpid(pid, &st, WNOHANG) == 0) sleep_s(0.01);
  if (waitpid(pid, &st, WNOHANG) == 0) { /* overdue */
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    return;
  }
  r->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}
/* }====================================================== */

/* details only when a check fails (an OK line stays one short line) */
#define REPORT(ok, name, ...)                                                                      \
  do {                                                                                             \
    int ok_ = (ok);                                                                                \
    if (ok_) report(1, (name), "%s", "");                                                          \
    else report(0, (name), __VA_ARGS__);                                                           \
  } while (0)

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  if (!f) return;
  fputs(text, f);
  fclose(f);
}

static char *read_file(const char *path) {
  FILE *f = fopen(path, "r");
  if (!f) return NULL;
  char *buf = calloc(1, 1 << 16);
  size_t n = fread(buf, 1, (1 << 16) - 1, f);
  buf[n] = 0;
  fclose(f);
  return buf;
}

/* does the history file hold this exact line? */
static int has_line(const char *text, const char *line) {
  size_t n = strlen(line);
  for (const char *p = text; p && *p;) {
    const char *e = strchr(p, '\n');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    if (len == n && strncmp(p, line, n) == 0) return 1;
    p = e ? e + 1 : NULL;
  }
  return 0;
}

static void interactive(void) {
  session s;
  char *argv[] = {"mdoctor", NULL};
  start(&s, argv);
  const double T = 10; /* generous: a sanitizer build starts slowly */

  step(&s, "repl: banner", NULL, T, "mdoctor " MD_VERSION, "md = require", NULL);
  step(&s, "repl: first prompt", NULL, T, "md> ", NULL);

  /* expressions print their values; tensors through __tostring */
  step(&s, "repl: 1+2 prints 3", "1+2\r", T, "\r\n3\r\nmd> ", NULL);
  step(&s, "repl: assignment prints nothing", "x = md.ones(2,3)\r", T, "x = md.ones(2,3)\r\nmd> ", NULL);
  step(&s, "repl: a tensor prints with its shape", "x\r", T, "md.Tensor(2x3, float32)", "[[1, 1, 1]",
       " [1, 1, 1]]", "md> ", NULL);
  step(&s, "repl: =expr as old lua", "=x:numel()\r", T, "\r\n6\r\nmd> ", NULL);
  step(&s, "repl: several values", "1, 'a', nil\r", T, "\r\n1\ta\tnil\r\nmd> ", NULL);

  /* a statement over several lines */
  step(&s, "repl: continuation prompt", "for i=1,3 do\r", T, "\r\n>>  ", NULL);
  step(&s, "repl: continuation again", "io.write(i)\r", T, "\r\n>>  ", NULL);
  step(&s, "repl: multi-line loop runs", "end\r", T, "\r\n123md> ", NULL);
  step(&s, "repl: local function over lines", "function sq(v)\r", T, ">>  ", NULL);
  type(&s, "return v*v\r");
  step(&s, "repl: function defined", "end\r", T, "md> ", NULL);
  step(&s, "repl: calling it", "sq(12)\r", T, "\r\n144\r\nmd> ", NULL);

  /* tab completion: fields of md, tensor methods, md.F */
  step(&s, "repl: TAB md.zer -> md.zeros", "md.zer\t", T, "os", NULL);
  step(&s, "repl: completed line runs", "(2):shape()\r", T, "md.Size{2}\r\nmd> ", NULL);
  step(&s, "repl: TAB x:sh -> x:shape", "x:sh\t", T, "x:shape", NULL);
  step(&s, "repl: completed method runs", "()\r", T, "md.Size{2, 3}\r\nmd> ", NULL);
  step(&s, "repl: TAB md.F.con -> md.F.conv2d", "md.F.con\t", T, "md.F.conv2d", NULL);
  step(&s, "repl: completed md.F name is the function", " == md.conv2d\r", T, "\r\ntrue\r\nmd> ", NULL);
  step(&s, "repl: TAB on a global", "coll\t", T, "collectgarbage", NULL);
  step(&s, "repl: completed global runs", "('count') > 0\r", T, "\r\ntrue\r\nmd> ", NULL);

  /* Ctrl-C stops a running Lua loop; the session and its globals stay */
  step(&s, "repl: an endless loop starts", "while true do end\r", T, "while true do end\r\n", NULL);
  sleep_s(0.5);
  double t0 = now();
  step(&s, "repl: Ctrl-C interrupts a Lua loop", "\x03", T, "interrupted!", "md> ", NULL);
  REPORT(now() - t0 < 3, "repl: the interrupt is prompt", "%.2f s", now() - t0);
  step(&s, "repl: session kept after interrupt", "x:sum():item()\r", T, "\r\n6.0\r\nmd> ", NULL);

  /* ... and a loop that spends its time in core ops */
  step(&s, "repl: a loop of core ops starts", "for i=1,1e9 do local y = md.ones(64,64) * 2 end\r", T,
       "end\r\n", NULL);
  sleep_s(0.5);
  t0 = now();
  step(&s, "repl: Ctrl-C interrupts a core-op loop", "\x03", T, "interrupted!", "md> ", NULL);
  REPORT(now() - t0 < 3, "repl: that interrupt is prompt", "%.2f s", now() - t0);
  step(&s, "repl: session kept after the second interrupt", "x:sum():item() + sq(2)\r", T, "\r\n10.0\r\nmd> ",
       NULL);

  /* Ctrl-C at the prompt drops the typed text and keeps running */
  step(&s, "repl: typing a line", "abc", T, "abc", NULL);
  sleep_s(0.2);
  step(&s, "repl: Ctrl-C at the prompt gives a fresh prompt", "\x03", T, "md> ", NULL);
  step(&s, "repl: the dropped text is gone", "1+1\r", T, "\r\n2\r\nmd> ", NULL);
  /* ... and in the middle of a statement drops all of it */
  step(&s, "repl: statement being continued", "for i=1,2 do\r", T, ">>  ", NULL);
  sleep_s(0.2);
  step(&s, "repl: Ctrl-C at the continuation prompt", "\x03", T, "md> ", NULL);
  step(&s, "repl: the unfinished statement is dropped", "40+2\r", T, "\r\n42\r\nmd> ", NULL);

  /* errors print a message with a traceback; the session goes on */
  step(&s, "repl: a runtime error and its traceback", "nosuch()\r", T,
       "attempt to call a nil value (global 'nosuch')", "stack traceback:", "md> ", NULL);
  step(&s, "repl: a core error names the op", "md.ones(2,3) + md.ones(4)\r", T, "stack traceback:", "md> ", NULL);
  step(&s, "repl: a syntax error", "1 +* 2\r", T, "unexpected symbol", "md> ", NULL);
  step(&s, "repl: error() with a table value", "error({})\r", T, "(error object is a table value)", "md> ", NULL);
  step(&s, "repl: alive after errors", "x:sum():item()\r", T, "\r\n6.0\r\nmd> ", NULL);
  step(&s, "repl: md.who lists tensors", "md.who()\r", T, "md.Size{2, 3}", "core memory", "md> ", NULL);

  /* Ctrl-D at an empty prompt ends the session */
  type(&s, "\x04");
  int st = finish(&s, T);
  REPORT(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "repl: Ctrl-D exits with status 0", "status %d", st);

  /* the history file holds the typed lines */
  char path[512];
  snprintf(path, sizeof path, "%s/.mdoctor_history", home);
  char *h = read_file(path);
  REPORT(h != NULL, "repl: history file written", "%s", path);
  REPORT(h && has_line(h, "1+2") && has_line(h, "x = md.ones(2,3)") && has_line(h, "sq(12)") &&
             has_line(h, "md.zeros(2):shape()") && has_line(h, "while true do end"),
         "repl: history holds the typed lines", "%s", h ? "" : "(no file)");
  REPORT(h && !has_line(h, "abc"), "repl: a line dropped by Ctrl-C is not in the history", "%s", h ? h : "(no file)");
  free(h);

  /* a second session reads that history: Up arrow brings back the last line */
  start(&s, argv);
  step(&s, "repl: second session starts", NULL, T, "md> ", NULL);
  step(&s, "repl: history recalled with Ctrl-P", "\x10", T, "md.who()", NULL);
  type(&s, "\x01\x0b"); /* Ctrl-A Ctrl-K: clear the line */
  step(&s, "repl: second session computes", "2^10\r", T, "1024.0", "md> ", NULL);
  type(&s, "\x04");
  st = finish(&s, T);
  REPORT(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "repl: second Ctrl-D exit", "status %d", st);
}

static void command_line(void) {
  result *r = malloc(sizeof *r);
  char script[512], errs[512], setter[512];
  snprintf(script, sizeof script, "%s/args.lua", home);
  snprintf(errs, sizeof errs, "%s/fails.lua", home);
  snprintf(setter, sizeof setter, "%s/setter.lua", home);
  write_file(script, "print('arg0=' .. arg[0], 'arg1=' .. arg[1], 'arg2=' .. tostring(arg[2]), 'n=' .. #arg,\n"
                     "      'dots=' .. table.concat({...}, ','))\n");
  write_file(errs, "local function inner() error('boom from the script') end\n"
                   "print('before')\ninner()\nprint('after')\n");
  write_file(setter, "y = 21\n");

  run(r, (char *[]){"mdoctor", "-e", "print(1)", NULL}, NULL, 20);
  REPORT(r->status == 0 && strcmp(r->out, "1\n") == 0, "cli: -e 'print(1)'", "status %d out '%s' err '%s'",
         r->status, r->out, r->err);
  run(r, (char *[]){"mdoctor", "-e", "a = 6", "-e", "print(a * 7, md.ones(3):sum():item())", NULL}, NULL, 20);
  REPORT(r->status == 0 && strcmp(r->out, "42\t3.0\n") == 0, "cli: two -e, md loaded", "status %d out '%s' err '%s'",
         r->status, r->out, r->err);
  run(r, (char *[]){"mdoctor", "-v", NULL}, NULL, 20);
  REPORT(r->status == 0 && strstr(r->out, "mdoctor " MD_VERSION), "cli: -v", "status %d out '%s'", r->status, r->out);
  run(r, (char *[]){"mdoctor", "--version", NULL}, NULL, 20);
  REPORT(r->status == 0 && strstr(r->out, "mdoctor " MD_VERSION), "cli: --version", "status %d out '%s'", r->status,
         r->out);
  run(r, (char *[]){"mdoctor", "-h", NULL}, NULL, 20);
  REPORT(r->status == 0 && strstr(r->out, "usage:") && strstr(r->out, "-e") && strstr(r->out, "-i"), "cli: -h",
         "status %d out '%s'", r->status, r->out);
  run(r, (char *[]){"mdoctor", "--frobnicate", NULL}, NULL, 20);
  REPORT(r->status != 0 && strstr(r->err, "--frobnicate") && strstr(r->err, "usage:") && r->out[0] == 0,
         "cli: unknown option fails with usage on stderr", "status %d out '%s' err '%s'", r->status, r->out, r->err);
  run(r, (char *[]){"mdoctor", "-e", NULL}, NULL, 20);
  REPORT(r->status != 0 && strstr(r->err, "-e"), "cli: -e without code fails", "status %d err '%s'", r->status,
         r->err);
  run(r, (char *[]){"mdoctor", "-e", "error('bad -e')", NULL}, NULL, 20);
  REPORT(r->status == 1 && strstr(r->err, "bad -e") && strstr(r->err, "stack traceback:"), "cli: -e error",
         "status %d err '%s'", r->status, r->err);

  /* a script and its arguments */
  run(r, (char *[]){"mdoctor", script, "foo", "bar baz", NULL}, NULL, 20);
  char want[1200];
  snprintf(want, sizeof want, "arg0=%s\targ1=foo\targ2=bar baz\tn=2\tdots=foo,bar baz\n", script);
  REPORT(r->status == 0 && strcmp(r->out, want) == 0, "cli: script sees arg[0], arg[1..], ...",
         "status %d out '%s' err '%s'", r->status, r->out, r->err);
  run(r, (char *[]){"mdoctor", "--", script, "-x", NULL}, NULL, 20);
  REPORT(r->status == 0 && strstr(r->out, "arg1=-x\t"), "cli: -- ends the options", "status %d out '%s' err '%s'",
         r->status, r->out, r->err);
  run(r, (char *[]){"mdoctor", script, "-v", NULL}, NULL, 20);
  REPORT(r->status == 0 && strstr(r->out, "arg1=-v\t"), "cli: options after the script are its arguments",
         "status %d out '%s' err '%s'", r->status, r->out, r->err);

  /* a failing script: status 1, message and traceback on stderr */
  run(r, (char *[]){"mdoctor", errs, NULL}, NULL, 20);
  REPORT(r->status == 1 && strcmp(r->out, "before\n") == 0 && strstr(r->err, "boom from the script") &&
             strstr(r->err, "stack traceback:") && strstr(r->err, "inner"),
         "cli: script error -> status 1, traceback on stderr", "status %d out '%s' err '%s'", r->status, r->out,
         r->err);
  run(r, (char *[]){"mdoctor", "/nonexistent/x.lua", NULL}, NULL, 20);
  REPORT(r->status == 1 && strstr(r->err, "cannot open"), "cli: missing script", "status %d err '%s'", r->status,
         r->err);
  run(r, (char *[]){"mdoctor", "-e", "print(", NULL}, NULL, 20);
  REPORT(r->status == 1 && strstr(r->err, "<eof>"), "cli: syntax error in -e", "status %d err '%s'", r->status,
         r->err);

  /* stdin is a script when it is not a terminal */
  run(r, (char *[]){"mdoctor", NULL}, "x = 6\nprint(x * 7)\n", 20);
  REPORT(r->status == 0 && strcmp(r->out, "42\n") == 0, "cli: stdin as a script", "status %d out '%s' err '%s'",
         r->status, r->out, r->err);
  run(r, (char *[]){"mdoctor", "-", "a1", NULL}, "print(arg[1], ...)\n", 20);
  REPORT(r->status == 0 && strcmp(r->out, "a1\ta1\n") == 0, "cli: '-' reads the script from stdin",
         "status %d out '%s' err '%s'", r->status, r->out, r->err);
  run(r, (char *[]){"mdoctor", NULL}, "error('from stdin')\n", 20);
  REPORT(r->status == 1 && strstr(r->err, "from stdin"), "cli: error in a stdin script", "status %d err '%s'",
         r->status, r->err);
  free(r);

  /* -i: the REPL after the script, with its globals */
  session s;
  start(&s, (char *[]){"mdoctor", "-i", setter, NULL});
  step(&s, "cli: -i script then the REPL", NULL, 10, "md> ", NULL);
  step(&s, "cli: -i keeps the script's globals", "y * 2\r", 10, "\r\n42\r\nmd> ", NULL);
  type(&s, "\x04");
  int st = finish(&s, 10);
  REPORT(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "cli: -i exits on Ctrl-D", "status %d", st);
  start(&s, (char *[]){"mdoctor", "-i", "-e", "z = 5", NULL});
  step(&s, "cli: -i -e then the REPL", "z\r", 10, "\r\n5\r\nmd> ", NULL);
  type(&s, "\x04");
  finish(&s, 10);

  /* a script on a terminal is interrupted by Ctrl-C: status 1, message */
  char loop[512];
  snprintf(loop, sizeof loop, "%s/loop.lua", home);
  write_file(loop, "print('looping') io.stdout:flush()\nwhile true do end\n");
  start(&s, (char *[]){"mdoctor", loop, NULL});
  step(&s, "cli: a looping script runs", NULL, 10, "looping", NULL);
  sleep_s(0.3);
  type(&s, "\x03");
  step(&s, "cli: Ctrl-C stops a script", NULL, 10, "interrupted!", NULL);
  st = finish(&s, 10);
  REPORT(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 1, "cli: an interrupted script exits with status 1",
         "status %d", st);

  unlink(script);
  unlink(errs);
  unlink(setter);
  unlink(loop);
}

int main(int argc, char **argv) {
  (void)argc;
  const char *env = getenv("MDOCTOR");
  if (env) snprintf(mdoctor, sizeof mdoctor, "%s", env);
  else { /* <build>/tests/test_repl -> <build>/mdoctor */
    ssize_t n = readlink("/proc/self/exe", mdoctor, sizeof mdoctor - 16);
    if (n <= 0) snprintf(mdoctor, sizeof mdoctor, "%s", argv[0]);
    else mdoctor[n] = 0;
    for (int k = 0; k < 2; k++) {
      char *sl = strrchr(mdoctor, '/');
      if (sl) *sl = 0;
      else strcpy(mdoctor, ".");
    }
    strcat(mdoctor, "/mdoctor");
  }
  if (access(mdoctor, X_OK) != 0) {
    REPORT(0, "find the mdoctor binary", "%s: %s", mdoctor, strerror(errno));
    return summary();
  }
  snprintf(home, sizeof home, "/tmp/md_repl_XXXXXX");
  if (!mkdtemp(home)) {
    REPORT(0, "make a temporary HOME", "%s", strerror(errno));
    return summary();
  }
  signal(SIGPIPE, SIG_IGN);
  interactive();
  command_line();
  char path[512];
  snprintf(path, sizeof path, "%s/.mdoctor_history", home);
  unlink(path);
  rmdir(home);
  return summary();
}
