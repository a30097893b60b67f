// Bundles @tether/client for browsers: one minified ESM file with socket.io-client inside.
// Usage: node packages/client/scripts/build-browser.mjs   → dist/browser/tether-client.js
import { build } from 'esbuild';
import { gzipSync } from 'node:zlib';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outfile = join(root, 'dist/browser/tether-client.js');

async function bundle(minify) {
  const result = await build({
    entryPoints: [join(root, 'src/index.ts')],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: ['es2022'],
    // Workspace packages resolve to their TypeScript sources, as in tests.
    conditions: ['source'],
    minify,
    sourcemap: minify ? 'linked' : false,
    legalComments: 'none',
    write: false,
    outfile,
    metafile: true,
  });
  const js = result.outputFiles.find((f) => f.path.endsWith('.js'));
  // The browser build must not pull Node built-ins (ws, net, crypto…).
  const nodeInputs = Object.keys(result.metafile.inputs).filter((p) => /node_modules\/(ws|node-fetch)\//.test(p));
  if (nodeInputs.length > 0) throw new Error(`Node-only modules in the browser bundle: ${nodeInputs.join(', ')}`);
  return { js, files: result.outputFiles };
}

const raw = await bundle(false);
const min = await bundle(true);
mkdirSync(dirname(outfile), { recursive: true });
for (const file of min.files) writeFileSync(file.path, file.contents);

const kb = (n) => `${(n / 1024).toFixed(1)} KB`;
const rawSize = raw.js.contents.byteLength;
const minSize = min.js.contents.byteLength;
const gzSize = gzipSync(min.js.contents, { level: 9 }).byteLength;
process.stdout.write(
  `tether-client.js  raw ${kb(rawSize)}  min ${kb(minSize)}  min+gzip ${kb(gzSize)}  → ${outfile}\n`,
);
