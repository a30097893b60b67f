// Bundles the helpdesk's web UI (React 19 + @tether/client) to apps/helpdesk/dist/public.
// `conditions: ['source']` resolves the workspace packages to their TypeScript sources, so the
// UI always ships the SDK of this checkout without building the packages first.
//
//   node apps/helpdesk/scripts/build-web.mjs            production bundle
//   node apps/helpdesk/scripts/build-web.mjs --dev      unminified, with source maps
import { copyFile, mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const appDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const outDir = join(appDir, 'dist', 'public');

/** Builds the bundle; returns the output directory. */
export async function buildWeb({ dev = false } = {}) {
  await mkdir(outDir, { recursive: true });
  await build({
    entryPoints: { app: join(appDir, 'src', 'web', 'main.tsx') },
    outdir: outDir,
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: ['es2022'],
    conditions: ['source'],
    jsx: 'automatic',
    minify: !dev,
    sourcemap: dev ? 'linked' : false,
    define: { 'process.env.NODE_ENV': JSON.stringify(dev ? 'development' : 'production') },
    logLevel: 'warning',
  });
  await copyFile(join(appDir, 'src', 'web', 'styles.css'), join(outDir, 'app.css'));
  await copyFile(join(appDir, 'src', 'web', 'index.html'), join(outDir, 'index.html'));
  return outDir;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const dir = await buildWeb({ dev: process.argv.includes('--dev') });
  process.stdout.write(`helpdesk web UI built to ${dir}\n`);
}
