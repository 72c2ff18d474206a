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
 * `NODE_OPTIONS` of every function: stack traces in the logs point into the TypeScript sources. It makes Node read
 * and parse the bundle's source map at import (~1 MB with the SDK bundled); `npm run bundles` measures the import
 * with it, as the function runs.
 */
export const FUNCTION_NODE_OPTIONS = '--enable-source-maps';

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
