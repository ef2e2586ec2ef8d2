// build.mjs bundles the phone app into dist/, which the Go server embeds
// (mobile-api/app.go). Every file is served under /app/; index.html is also
// served at /join, so every URL in it is absolute.
//
// The service worker precaches exactly the files written here. Its cache
// name is a hash of their bytes, so a new build replaces the old cache.
import { build } from "esbuild";
import { createHash } from "node:crypto";
import { copyFile, mkdir, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { deflateSync } from "node:zlib";
import path from "node:path";

const here = path.dirname(new URL(import.meta.url).pathname);
const src = path.join(here, "src");
const out = path.join(here, "dist");

// Keep dist/.keep: go:embed needs the directory on a fresh clone.
for (const name of await readdir(out).catch(() => [])) {
  if (name !== ".keep") await rm(path.join(out, name), { recursive: true, force: true });
}
await mkdir(out, { recursive: true });

const common = {
  bundle: true,
  minify: true,
  format: "esm",
  target: ["es2022", "chrome110", "safari16"],
  legalComments: "none",
  logLevel: "warning",
};

await build({ ...common, entryPoints: [path.join(src, "main.ts")], outfile: path.join(out, "app.js") });

// automerge's wasm is loaded by URL (the /slim entry points), so the
// service worker can cache it like any other file.
await copyFile(path.join(here, "node_modules/@automerge/automerge/dist/automerge.wasm"), path.join(out, "automerge.wasm"));
for (const f of ["index.html", "style.css", "manifest.webmanifest", "icon.svg"]) {
  await copyFile(path.join(src, f), path.join(out, f));
}
await writeFile(path.join(out, "icon-192.png"), iconPNG(192));
await writeFile(path.join(out, "icon-512.png"), iconPNG(512));

// The precache list: every file so far, under /app/.
const files = (await readdir(out)).filter((f) => f !== ".keep").sort();
const hash = createHash("sha256");
for (const f of files) hash.update(f).update(await readFile(path.join(out, f)));
const version = hash.digest("hex").slice(0, 16);
await build({
  ...common,
  entryPoints: [path.join(src, "sw.ts")],
  outfile: path.join(out, "sw.js"),
  define: {
    __VERSION__: JSON.stringify(version),
    __PRECACHE__: JSON.stringify(["/app/", ...files.filter((f) => f !== "index.html").map((f) => "/app/" + f)]),
  },
});
console.log(`built dist/ (${files.length + 1} files, version ${version})`);

// iconPNG draws the app icon, a ring on a green square, as a PNG of
// size×size pixels (RGBA), with no image library.
function iconPNG(size) {
  const rows = [];
  const c = size / 2, outer = size * 0.36, inner = size * 0.22;
  for (let y = 0; y < size; y++) {
    const row = Buffer.alloc(1 + size * 4);
    for (let x = 0; x < size; x++) {
      const d = Math.hypot(x + 0.5 - c, y + 0.5 - c);
      const ring = d <= outer && d >= inner;
      const px = ring ? [255, 255, 255, 255] : [22, 101, 52, 255];
      px.forEach((v, i) => (row[1 + x * 4 + i] = v));
    }
    rows.push(row);
  }
  const chunk = (type, data) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(td));
    return Buffer.concat([len, td, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(size, 0);
  ihdr.writeUInt32BE(size, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 6; // RGBA
  return Buffer.concat([
    Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]),
    chunk("IHDR", ihdr),
    chunk("IDAT", deflateSync(Buffer.concat(rows))),
    chunk("IEND", Buffer.alloc(0)),
  ]);
}

function crc32(buf) {
  let c = ~0;
  for (const b of buf) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
  }
  return ~c >>> 0;
}
