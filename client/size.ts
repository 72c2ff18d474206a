/**
 * Reports the client's size as an app would ship it: bundled as build.ts does (bundle.ts), minified by esbuild and
 * gzipped (node:zlib, level 9).
 * `npm run client:size` prints it and fails when it is over the budget.
 */
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';
import { bundleOptions } from './bundle.ts';

/** The size the client must keep to (issue #13: at most 4.5 KB minified and gzipped). */
export const BUDGET_BYTES = 4.5 * 1024;

export async function bundleSize(): Promise<{ minified: number; gzipped: number }> {
  const out = await build({ ...bundleOptions, minify: true, write: false });
  const code = out.outputFiles[0]?.contents;
  if (!code) throw new Error('esbuild produced no output');
  return { minified: code.byteLength, gzipped: gzipSync(code, { level: 9 }).byteLength };
}

if (process.argv[1] === import.meta.filename) {
  const { minified, gzipped } = await bundleSize();
  console.log(`@tenantcast/client: ${minified} B minified, ${gzipped} B minified+gzipped (budget ${BUDGET_BYTES} B)`);
  if (gzipped > BUDGET_BYTES) process.exitCode = 1;
}
