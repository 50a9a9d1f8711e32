#!/bin/sh
# Open a run's report.html in headless Chromium and check that every picture
# rendered: each <img> decoded (naturalWidth > 0) and each inline <svg> has a
# size.  Optionally save a screenshot.
#   scripts/check_report.sh out/doctor [screenshot.png]
# Needs Debian's chromium (apt-get install chromium).  Exit 0 when all rendered.
set -e
dir=${1:?usage: check_report.sh RUN_DIR [screenshot.png]}
[ -f "$dir/report.html" ] || { echo "check_report: no $dir/report.html" >&2; exit 2; }
command -v chromium >/dev/null || { echo "check_report: chromium not installed (apt-get install chromium)" >&2; exit 2; }
abs=$(cd "$dir" && pwd)
page="$abs/.check_report.html"
# the report plus a script that counts what did not render, written into the DOM
sed 's#</body>#<script>\
window.addEventListener("load", function () {\
  var imgs = document.images, bad = [], svgs = document.querySelectorAll("svg"), sbad = 0;\
  for (var i = 0; i < imgs.length; i++) if (!imgs[i].complete || imgs[i].naturalWidth === 0) bad.push(imgs[i].getAttribute("src"));\
  for (var j = 0; j < svgs.length; j++) { var r = svgs[j].getBoundingClientRect(); if (r.width === 0 || r.height === 0) sbad++; }\
  var p = document.createElement("pre"); p.id = "md-check";\
  p.textContent = "REPORT-CHECK images=" + imgs.length + " broken=" + bad.length + " svgs=" + svgs.length + " svg_broken=" + sbad + (bad.length ? " first=" + bad[0] : "");\
  document.body.appendChild(p);\
});\
</script></body>#' "$abs/report.html" > "$page"
flags="--headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking --disable-component-update --disable-sync --user-data-dir=$(mktemp -d)"
out=$(timeout 120 chromium $flags --virtual-time-budget=10000 --dump-dom "file://$page" 2>/dev/null | grep -o 'id="md-check">REPORT-CHECK[^<]*' | sed 's/.*>//' || true)
rm -f "$page"
if [ -n "$2" ]; then
  timeout 120 chromium $flags --window-size=1200,3000 --screenshot="$2" "file://$abs/report.html" >/dev/null 2>&1
fi
[ -n "$out" ] || { echo "check_report: the page did not load"; exit 1; }
echo "$out"
case "$out" in
  *"images=0 "*) echo "check_report: no pictures at all"; exit 1 ;;
  *" broken=0 "*"svg_broken=0"*) exit 0 ;;
  *) exit 1 ;;
esac
