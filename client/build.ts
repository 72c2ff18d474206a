/**
 * Builds the package into client/dist: one ESM bundle for browsers and Node (`index.js`, with a source map; built with
 * bundle.ts's options, which shorten internal property names) and
 * type declarations (`*.d.ts`, emitted by tsc with client/tsconfig.json). Run with `npm run client:build`.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';
import { bundleOptions } from './bundle.ts';
import { bundleSize } from './size.ts';

const root = import.meta.dirname;
const dist = join(root, 'dist');

rmSync(dist, { recursive: true, force: true });
await build({ ...bundleOptions, sourcemap: true, outfile: join(dist, 'index.js') });
execFileSync(process.execPath, [join(root, '../node_modules/typescript/bin/tsc'), '-p', join(root, 'tsconfig.json')], {
  stdio: 'inherit',
});
// The sources import with `.ts` extensions; published declarations must name the `.js` files next to them.
for (const file of readdirSync(dist).filter((f) => f.endsWith('.d.ts'))) {
  const path = join(dist, file);
  writeFileSync(path, readFileSync(path, 'utf8').replace(/(from\s+'\.{1,2}\/[^']+)\.ts'/g, "$1.js'"));
}
const size = await bundleSize();
console.log(`client/dist written: ${size.minified} B minified, ${size.gzipped} B minified+gzipped`);
