/**
 * Prebuilt function bundles: the manifest's functions bundled by esbuild with the settings CDK bundles them with for
 * Lambda (lib/esbuild-options.ts, shared with lib/bundling.ts: minified ESM, `module` main fields first, the
 * `require` shim, the AWS SDK bundled but for the credential fallbacks Lambda never loads), one `<function name>.mjs` per
 * function in one directory. A sandbox loading its bundle starts in ~0.15 s of CPU instead of ~0.8 s through tsx's
 * loader (hundreds of TypeScript and SDK modules resolved one by one); a test file starting a runtime pays that for
 * every function. The Jest global setup (test/support/global-setup.ts) builds them once per run and names the
 * directory in FUNCTION_BUNDLES_ENV; `npm start` keeps loading the TypeScript sources (edits apply on restart).
 */
import { resolve } from 'node:path';
import { type FunctionSpec, functions as manifestFunctions } from '../lambdas/manifest.ts';
import { ESM_REQUIRE_BANNER, RUNTIME_PROVIDED_MODULES } from '../lib/esbuild-options.ts';

/** The environment variable naming a directory of prebuilt bundles, read by `startLocal` (local/runtime.ts). */
export const FUNCTION_BUNDLES_ENV = 'TENANTCAST_FUNCTION_BUNDLES';

/** The bundle of `functionName` in `dir`. */
export function bundleFileOf(dir: string, functionName: string): string {
  return resolve(dir, `${functionName}.mjs`);
}

/**
 * Bundles every function of `specs` (default: the manifest's) into `outDir`, in one esbuild run whose shared code
 * goes into common chunks (a few seconds for all of them, instead of one full bundle each).
 */
export async function buildFunctionBundles(
  outDir: string,
  specs: readonly FunctionSpec[] = manifestFunctions,
  root = resolve(import.meta.dirname, '..'),
): Promise<void> {
  // Loaded here only: the runtime reads this module for the names above.
  const { build } = await import('esbuild');
  await build({
    entryPoints: Object.fromEntries(specs.map((spec) => [spec.name, resolve(root, spec.entry)])),
    bundle: true,
    splitting: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    mainFields: ['module', 'main'],
    banner: { js: ESM_REQUIRE_BANNER },
    minify: true,
    external: [...RUNTIME_PROVIDED_MODULES],
    outdir: outDir,
    outExtension: { '.js': '.mjs' },
    // No source maps: Node would read a map of megabytes in every sandbox whenever source maps are enabled.
    sourcemap: false,
    logLevel: 'warning',
  });
}
