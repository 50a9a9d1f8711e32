#!/bin/sh
# Run every test program in $1/tests, add up their "N passed, N failed"
# lines and end with the total.  A program that crashes or prints no
# summary counts as one failure.
B=${1:-build}
pass=0; fail=0
for t in "$B"/tests/test_* tests/lua/test_*.lua; do
  [ -e "$t" ] || continue
  case "$t" in
    *.lua) out=$("$B/mdoctor" "$t" 2>&1); rc=$? ;;
    *) [ -x "$t" ] || continue; out=$("$t" 2>&1); rc=$? ;;
  esac
  line=$(echo "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed$' | tail -1)
  # failures and notes only; OK lines are quiet (MD_VERBOSE=1 shows them)
  if [ -n "$MD_VERBOSE" ]; then echo "$out"; else
    echo "$out" | grep -vE '^OK|^[0-9]+ passed, [0-9]+ failed$'; fi
  [ -n "$line" ] && echo "$(basename "$t"): $line"
  if [ -z "$line" ]; then
    echo "$t: exited $rc without a summary"; fail=$((fail+1)); continue
  fi
  p=${line%% passed*}; f=${line#*, }; f=${f%% failed*}
  pass=$((pass+p)); fail=$((fail+f))
  if [ "$rc" != 0 ] && [ "$f" = 0 ]; then echo "$t: exited $rc"; fail=$((fail+1)); fi
done
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
