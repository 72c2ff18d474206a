/**
 * How every tenantcast function is bundled (esbuild through CDK's NodejsFunction) and the budget each bundle keeps
 * to. lib/tenantcast-function.ts applies these options; `npm run bundles` (scripts/bundles.ts) builds the functions
 * through the CDK app itself and reports size and import time against the budget (docs/deploy.md, "Bundles").
 */
import { type BundlingOptions, LogLevel, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import { ESM_REQUIRE_BANNER, RUNTIME_PROVIDED_MODULES } from './esbuild-options.ts';

export { ESM_REQUIRE_BANNER, RUNTIME_PROVIDED_MODULES };

/**
 * What a bundle may weigh and how long importing it may take in a fresh Node process (issue #14): the code file
 * (`index.mjs`, not its source map) at most 600 KB (600,000 bytes), the import at most 100 ms (median of 5 fresh
 * processes, `npm run bundles` only: a timing depends on the machine, so no test asserts it).
 */
export const BUNDLE_BUDGET = { bytes: 600_000, importMs: 100 } as const;

/**
 * `NODE_OPTIONS` of every function: none. `--enable-source-maps` (stack traces pointing into the TypeScript) makes
 * Node read and parse the bundle's ~0.8 MB source map at every cold start: measured with `npm run bundles` on a quiet
 * machine (load ~3.5, same run of minutes), the imports took 62-137 ms with it and 55-108 ms without. The map is
 * still built into the asset (`cdk.out`), to decode a stack trace offline, or to turn on for one function while
 * debugging (`NODE_OPTIONS=--enable-source-maps` in its environment).
 */
export const FUNCTION_NODE_OPTIONS: string | undefined = undefined;

/** The esbuild options of every function: minified ESM with the require banner and a source map (without sources). */
export const tenantcastBundling: BundlingOptions = {
  format: OutputFormat.ESM,
  mainFields: ['module', 'main'],
  banner: ESM_REQUIRE_BANNER,
  minify: true,
  sourceMap: true,
  sourcesContent: false,
  externalModules: [...RUNTIME_PROVIDED_MODULES],
  logLevel: LogLevel.WARNING,
};
