/*
** main.c -- the `mdoctor` shell: runs recipes, and without a script opens a
** REPL with readline editing and history, tab completion of globals, table
** fields and tensor methods, multi-line input, printing of expression
** values, and Ctrl-C that stops the running command but keeps the session.
**
** The REPL follows the standalone lua.c's approach (written anew here):
** try "return <line>" first so expressions print, continue a statement
** while the parser complains about <eof>, and turn SIGINT into a Lua hook
** that raises "interrupted!" (a C signal handler cannot touch a Lua state).
** Lines are read through readline's callback interface, so that Ctrl-C at
** a prompt drops the line -- and a statement being continued -- at once.
*/
#include "lbind.h" /* luaopen_mdoctor_core */
#include "md.h"

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <readline/history.h>
#include <readline/readline.h>
#include <errno.h>
#include <signal.h>
#include <sys/select.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static lua_State *globalL;
static const char *progname = "mdoctor";

/* {====================================================== interrupts */
static void lstop(lua_State *L, lua_Debug *ar) {
  (void)ar;
  lua_sethook(L, NULL, 0, 0);
  *md_interrupt_flag() = 0;
  luaL_error(L, "interrupted!");
}
/* while Lua runs: ask the core to stop between ops and Lua at the next hook */
static void laction(int sig) {
  (void)sig;
  *md_interrupt_flag() = 1;
  if (globalL) lua_sethook(globalL, lstop, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
}
/* at the prompt: only note it; read_line() drops the line (and a statement
** being continued) and shows a fresh prompt */
static volatile sig_atomic_t prompt_sigint;
static void prompt_action(int sig) {
  (void)sig;
  prompt_sigint = 1;
}
/* }====================================================== */

/* {====================================================== running code */
static int msghandler(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (!msg) {
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING) return 1;
    msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  }
  luaL_traceback(L, L, msg, 1);
  return 1;
}

static int docall(lua_State *L, int narg, int nres) {
  int base = lua_gettop(L) - narg;
  lua_pushcfunction(L, msghandler);
  lua_insert(L, base);
  globalL = L;
  *md_interrupt_flag() = 0;
  void (*old)(int) = signal(SIGINT, laction);
  int st = lua_pcall(L, narg, nres, base);
  signal(SIGINT, old == SIG_ERR ? SIG_DFL : old);
  lua_sethook(L, NULL, 0, 0);
  *md_interrupt_flag() = 0;
  lua_remove(L, base);
  return st;
}

static int report(lua_State *L, int st) {
  if (st != LUA_OK) {
    const char *msg = lua_tostring(L, -1);
    fprintf(stderr, "%s: %s\n", progname, msg ? msg : "(error)");
    fflush(stderr);
    lua_pop(L, 1);
  }
  return st;
}

static int dostring(lua_State *L, const char *s, const char *name) {
  int st = luaL_loadbuffer(L, s, strlen(s), name);
  if (st == LUA_OK) st = docall(L, 0, 0);
  return report(L, st);
}

/* the global 'arg' as lua.c makes it: script at 0, its args at 1.., the
** interpreter and options at negative indices */
static void createargtable(lua_State *L, char **argv, int argc, int script) {
  lua_createtable(L, argc - script, script + 1);
  for (int i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i - script);
  }
  lua_setglobal(L, "arg");
}

static int dofile_args(lua_State *L, const char *fname) {
  if (fname && strcmp(fname, "-") == 0) fname = NULL; /* stdin */
  int st = luaL_loadfile(L, fname);
  if (st == LUA_OK) {
    lua_getglobal(L, "arg");
    int n = (int)luaL_len(L, -1);
    luaL_checkstack(L, n + 3, "too many arguments to script");
    for (int i = 1; i <= n; i++) lua_rawgeti(L, -i, i);
    lua_remove(L, -n - 1);
    st = docall(L, n, 0);
  }
  return report(L, st);
}
/* }====================================================== */

/* {====================================================== the REPL */
static char histfile[4096];

/* completion: the word under the cursor is a chain a.b.c or a:b; complete
** the last part among the fields of the table reached (globals for none),
** and for tensors among their methods */
static char **complete(const char *text, int start, int end);
static char *match_gen(const char *text, int state);
static char **matches;
static int nmatches, imatch;

/* a candidate: prefix (the chain typed so far) + key */
static void add_match(const char *prefix, const char *key) {
  char *m = malloc(strlen(prefix) + strlen(key) + 1);
  if (!m) return;
  sprintf(m, "%s%s", prefix, key);
  char **nm = realloc(matches, sizeof *nm * (size_t)(nmatches + 2));
  if (!nm) {
    free(m);
    return;
  }
  matches = nm;
  matches[nmatches++] = m;
}

static void collect_keys(lua_State *L, int idx, const char *prefix, const char *part) {
  size_t pl = strlen(part);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    if (lua_type(L, -2) == LUA_TSTRING) {
      const char *k = lua_tostring(L, -2);
      if (strncmp(k, part, pl) == 0 && k[0] != '_') add_match(prefix, k);
    }
    lua_pop(L, 1);
  }
}

static void fill_matches(const char *text) {
  lua_State *L = globalL;
  int top = lua_gettop(L);
  const char *cut = NULL;
  for (const char *p = text; *p; p++)
    if (*p == '.' || *p == ':') cut = p;
  lua_pushglobaltable(L);
  if (cut) { /* walk the chain up to the last separator */
    const char *p = text;
    while (p < cut) {
      const char *q = p;
      while (q < cut && *q != '.' && *q != ':') q++;
      lua_pushlstring(L, p, (size_t)(q - p));
      if (lua_type(L, -2) == LUA_TTABLE)
        lua_rawget(L, -2);
      else { /* a userdata: look through __index */
        lua_pop(L, 1);
        lua_pushlstring(L, p, (size_t)(q - p));
        lua_gettable(L, -2);
      }
      lua_remove(L, -2);
      p = q + 1;
    }
  }
  char prefix[512];
  size_t plen = cut ? (size_t)(cut - text) + 1 : 0;
  if (plen >= sizeof prefix) plen = sizeof prefix - 1;
  memcpy(prefix, text, plen);
  prefix[plen] = 0;
  const char *part = cut ? cut + 1 : text;
  if (lua_type(L, -1) == LUA_TTABLE) {
    collect_keys(L, lua_gettop(L), prefix, part);
    if (lua_getmetatable(L, -1)) { /* class tables: methods through __index */
      if (lua_getfield(L, -1, "__index") == LUA_TTABLE) collect_keys(L, lua_gettop(L), prefix, part);
    }
  } else if (lua_type(L, -1) == LUA_TUSERDATA && lua_getmetatable(L, -1)) {
    if (lua_getfield(L, -1, "methods") == LUA_TTABLE) collect_keys(L, lua_gettop(L), prefix, part);
  }
  if (!cut) { /* keywords too */
    static const char *const kw[] = {"and", "break", "do", "else", "elseif", "end", "false", "for",
                                     "function", "goto", "if", "in", "local", "nil", "not", "or",
                                     "repeat", "return", "then", "true", "until", "while", NULL};
    for (const char *const *k = kw; *k; k++)
      if (strncmp(*k, part, strlen(part)) == 0) add_match("", *k);
  }
  lua_settop(L, top);
}

static char *match_gen(const char *text, int state) {
  if (state == 0) {
    for (int i = imatch; i < nmatches; i++) free(matches[i]);
    free(matches);
    matches = NULL;
    nmatches = imatch = 0;
    fill_matches(text);
  }
  return imatch < nmatches ? matches[imatch++] : NULL;
}

static char **complete(const char *text, int start, int end) {
  (void)start;
  (void)end;
  rl_completion_append_character = '\0';
  return rl_completion_matches(text, match_gen);
}

static int incomplete(lua_State *L, int st) {
  if (st == LUA_ERRSYNTAX) {
    size_t lmsg;
    const char *msg = lua_tolstring(L, -1, &lmsg);
    if (lmsg >= 5 && strcmp(msg + lmsg - 5, "<eof>") == 0) {
      lua_pop(L, 1);
      return 1;
    }
  }
  return 0;
}

/* One line from the terminal through readline's callback interface, so that
** Ctrl-C at a prompt can end the wait: returns 0 with *out the line, -1 at
** end of input, 1 when Ctrl-C dropped the line. */
static char *cb_line;
static int cb_done;
static void cb_handler(char *line) {
  cb_line = line;
  cb_done = 1;
  rl_callback_handler_remove();
}

static int read_line(const char *prompt, char **out) {
  struct sigaction sa, old;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = prompt_action; /* no SA_RESTART: select() returns EINTR */
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, &old);
  prompt_sigint = 0;
  cb_done = 0;
  cb_line = NULL;
  fflush(stdout);
  rl_callback_handler_install(prompt, cb_handler);
  int rc = 0;
  while (!cb_done) {
    if (prompt_sigint) { /* Ctrl-C: forget the line, start again */
      prompt_sigint = 0;
      rl_free_line_state();
      rl_callback_sigcleanup();
      rl_cleanup_after_signal();
      rl_callback_handler_remove();
      (void)!write(1, "^C\n", 3);
      rc = 1;
      break;
    }
    fd_set fds;
    int fd = fileno(rl_instream ? rl_instream : stdin);
    FD_ZERO(&fds);
    FD_SET(fd, &fds);
    int n = select(fd + 1, &fds, NULL, NULL, NULL);
    if (n < 0) {
      if (errno == EINTR) continue;
      rl_callback_handler_remove();
      rc = -1;
      break;
    }
    if (n > 0) rl_callback_read_char();
  }
  sigaction(SIGINT, &old, NULL);
  if (rc == 0 && !cb_line) rc = -1;
  *out = rc == 0 ? cb_line : NULL;
  if (rc != 0) free(cb_line);
  return rc;
}

/* read a statement (maybe several lines); leaves a compiled chunk (or nil
** for nothing to run) on the stack, or an error message; returns -1 at end
** of input */
static int loadline(lua_State *L) {
  char *line;
  int r;
  while ((r = read_line("md> ", &line)) == 1) {} /* Ctrl-C: a fresh prompt */
  if (r < 0) return -1;
  if (!*line) {
    free(line);
    lua_pushnil(L);
    return LUA_OK;
  }
  /* "=expr" as old lua, and plain expressions: try return first */
  const char *src = line[0] == '=' ? line + 1 : line;
  char *ret = malloc(strlen(src) + 16);
  if (!ret) {
    free(line);
    return -1;
  }
  sprintf(ret, "return %s;", src);
  int st = luaL_loadbuffer(L, ret, strlen(ret), "=stdin");
  free(ret);
  if (st == LUA_OK) {
    add_history(line);
    free(line);
    return st;
  }
  lua_pop(L, 1);
  /* a statement, possibly continued */
  size_t len = strlen(line);
  char *buf = line;
  for (;;) {
    st = luaL_loadbuffer(L, buf, len, "=stdin");
    if (!incomplete(L, st)) break;
    char *more;
    r = read_line(">>  ", &more);
    if (r != 0) { /* Ctrl-C drops the whole statement; end of input ends */
      if (len) add_history(buf);
      free(buf);
      if (r < 0) return -1;
      lua_pushnil(L);
      return LUA_OK;
    }
    size_t ml = strlen(more);
    char *nb = realloc(buf, len + ml + 2);
    if (!nb) {
      free(more);
      free(buf);
      return -1;
    }
    buf = nb;
    buf[len++] = '\n';
    memcpy(buf + len, more, ml + 1);
    len += ml;
    free(more);
  }
  add_history(buf);
  free(buf);
  return st;
}

/* print the values a chunk returned, tensors through their __tostring */
static void print_results(lua_State *L) {
  int n = lua_gettop(L);
  if (n == 0) return;
  lua_getglobal(L, "print");
  lua_insert(L, 1);
  report(L, docall(L, n, 0)); /* Ctrl-C stops a long print too */
}

static void repl(lua_State *L) {
  rl_readline_name = "mdoctor";
  rl_attempted_completion_function = complete;
  rl_basic_word_break_characters = " \t\n\"\\'`@$><=;|&{(,+-*/%^#[]~";
  const char *home = getenv("HOME");
  if (home) {
    snprintf(histfile, sizeof histfile, "%s/.mdoctor_history", home);
    read_history(histfile);
  }
  /* between commands Ctrl-C must not end the session */
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = prompt_action;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  printf("mdoctor %s (Lua %s.%s, %s)  -- md = require \"mdoctor\" is loaded; md.who(), Ctrl-D quits\n",
         MD_VERSION, LUA_VERSION_MAJOR, LUA_VERSION_MINOR, md_blas_info());
  for (;;) {
    lua_settop(L, 0);
    int st = loadline(L);
    if (st == -1) break;
    if (st == LUA_OK && lua_isnil(L, -1)) continue;
    if (st == LUA_OK) st = docall(L, 0, LUA_MULTRET);
    if (st == LUA_OK)
      print_results(L);
    else
      report(L, st);
  }
  lua_settop(L, 0);
  printf("\n");
  if (home) {
    write_history(histfile);
    history_truncate_file(histfile, 1000);
  }
}
/* }====================================================== */

/* {====================================================== start-up */
static void usage(FILE *f) {
  fprintf(f, "usage: %s [options] [script [args]]\n"
         "  -e code     run code\n"
         "  -i          enter the REPL after running the script / -e\n"
         "  -           read the script from stdin\n"
         "  --          stop handling options\n"
         "  -v, --version  print the version\n"
         "  -h, --help     this help\n"
         "With no script the REPL starts.  MD_NUM_THREADS sets the thread count.\n",
         progname);
}

/* package.path / cpath: the Lua library next to the binary (build/mdoctor
** -> <repo>/lua), or MDOCTOR_HOME/lua */
static void setpaths(lua_State *L, const char *argv0) {
  char exe[4096];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) {
    snprintf(exe, sizeof exe, "%s", argv0);
    n = (ssize_t)strlen(exe);
  }
  exe[n] = 0;
  char *slash = strrchr(exe, '/');
  if (slash) *slash = 0;
  else strcpy(exe, ".");
  const char *home = getenv("MDOCTOR_HOME");
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "path");
  if (home)
    lua_pushfstring(L, "%s/lua/?.lua;%s/lua/?/init.lua;%s/recipes/?.lua;%s", home, home, home, lua_tostring(L, -1));
  else
    lua_pushfstring(L, "%s/../lua/?.lua;%s/../lua/?/init.lua;%s/../recipes/?.lua;./?.lua;%s", exe, exe, exe,
                    lua_tostring(L, -1));
  lua_setfield(L, -3, "path");
  lua_pop(L, 1);
  /* the C module is linked in */
  lua_getfield(L, -1, "preload");
  lua_pushcfunction(L, luaopen_mdoctor_core);
  lua_setfield(L, -2, "mdoctor.core");
  lua_pop(L, 2);
}

int main(int argc, char **argv) {
  int interactive = 0, script = 0, has_e = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      usage(stdout);
      return 0;
    }
    if (strcmp(a, "-v") == 0 || strcmp(a, "--version") == 0) {
      printf("mdoctor %s\n", MD_VERSION);
      return 0;
    }
    if (strcmp(a, "-i") == 0) interactive = 1;
    else if (strcmp(a, "-e") == 0) {
      if (++i >= argc) {
        fprintf(stderr, "%s: '-e' needs an argument\n", progname);
        usage(stderr);
        return 1;
      }
      has_e = 1;
    } else if (strcmp(a, "--") == 0) {
      if (i + 1 < argc) script = i + 1;
      break;
    } else if (a[0] == '-' && a[1]) {
      fprintf(stderr, "%s: unrecognized option '%s'\n", progname, a);
      usage(stderr);
      return 1;
    } else {
      script = i;
      break;
    }
  }
  lua_State *L = luaL_newstate();
  if (!L) {
    fprintf(stderr, "%s: cannot create Lua state: not enough memory\n", progname);
    return 1;
  }
  globalL = L;
  luaL_openlibs(L);
  setpaths(L, argv[0]);
  createargtable(L, argv, argc, script ? script : argc);
  /* md is always there in the shell */
  int st = dostring(L, "md = require 'mdoctor'", "=init");
  for (int i = 1; st == LUA_OK && i < (script ? script : argc); i++)
    if (strcmp(argv[i], "-e") == 0) st = dostring(L, argv[++i], "=(command line)");
  if (st == LUA_OK && script) st = dofile_args(L, argv[script]);
  if (st == LUA_OK && (interactive || (!script && !has_e))) {
    if (isatty(0) || interactive)
      repl(L);
    else
      st = dofile_args(L, NULL); /* stdin as a script */
  }
  lua_close(L);
  return st == LUA_OK ? 0 : 1;
}
/* }====================================================== */
