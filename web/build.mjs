// build.mjs: bundles the web application into OUTDIR (never into the source
// tree): index.html, main-HASH.js and style-HASH.css. The hashed names let
// nginx cache them for a year; index.html (no-cache) names them, with
// Subresource Integrity hashes.
//   node web/build.mjs --outdir build/web
import { createHash } from "node:crypto";
import { mkdir, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));
const i = process.argv.indexOf("--outdir");
if (i < 0 || !process.argv[i + 1]) {
  console.error("usage: node web/build.mjs --outdir DIR");
  process.exit(2);
}
const outdir = resolve(process.argv[i + 1]);
if (outdir === here || outdir.startsWith(here + "/")) {
  console.error(`build.mjs: ${outdir} lies in the source tree; give a build directory`);
  process.exit(2);
}

await mkdir(outdir, { recursive: true });
for (const f of await readdir(outdir)) {
  if (/^(main|style)-[A-Z0-9]+\.(js|css)$/.test(f) || f === "index.html") await rm(join(outdir, f));
}

const result = await esbuild.build({
  entryPoints: [join(here, "src/main.ts"), join(here, "src/style.css")],
  bundle: true,
  format: "esm",
  target: ["es2022"],
  minify: true,
  legalComments: "none",
  entryNames: "[name]-[hash]",
  outdir,
  metafile: true,
  logLevel: "warning",
});

const outputs = {};
for (const [path, meta] of Object.entries(result.metafile.outputs)) {
  if (meta.entryPoint === undefined) continue;
  outputs[basename(meta.entryPoint)] = basename(path);
}
const js = outputs["main.ts"];
const css = outputs["style.css"];
if (!js || !css) throw new Error(`build.mjs: unexpected outputs ${JSON.stringify(outputs)}`);

async function sri(name) {
  const bytes = await readFile(join(outdir, name));
  return "sha384-" + createHash("sha384").update(bytes).digest("base64");
}

let html = await readFile(join(here, "src/index.html"), "utf8");
const fill = { "@JS@": `./${js}`, "@JS_SRI@": await sri(js), "@CSS@": `./${css}`, "@CSS_SRI@": await sri(css) };
for (const [k, v] of Object.entries(fill)) html = html.replaceAll(k, v);
if (/@[A-Z_]+@/.test(html)) throw new Error("build.mjs: unfilled placeholder in index.html");
await writeFile(join(outdir, "index.html"), html);
console.log(`web: ${outdir}/index.html, ${js}, ${css}`);
