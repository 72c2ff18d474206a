/**
 * How every tenantcast function is bundled (esbuild through CDK's NodejsFunction) and the budget each bundle keeps
 * to. lib/tenantcast-function.ts applies these options; `npm run bundles` (scripts/bundles.ts) builds the functions
 * through the CDK app itself and reports size and import time against the budget (docs/deploy.md, "Bundles").
 */
import { type BundlingOptions, LogLevel, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';

/**
 * Prepended to every ESM bundle so that CommonJS dependencies calling `require` keep working: ESM output has no
 * `require` of its own.
 */
export const ESM_REQUIRE_BANNER =
  "import { createRequire as __tenantcastCreateRequire } from 'node:module'; const require = __tenantcastCreateRequire(import.meta.url);";

/**
 * What a bundle may weigh and how long importing it may take in a fresh Node process (issue #14): the code file
 * (`index.mjs`, not its source map) at most 600 KB (600,000 bytes), the import at most 100 ms (median of 5 fresh
 * processes, `npm run bundles` only: a timing depends on the machine, so no test asserts it).
 */
export const BUNDLE_BUDGET = { bytes: 600_000, importMs: 100 } as const;

/**
 * Left out of the bundles, loaded from the Lambda Node.js runtime's own AWS SDK if ever needed: the fallbacks of the
 * SDK's default credential chain, which it imports only when the environment has no credentials (SSO, ini files,
 * credential processes, web identity, container and instance metadata). Lambda sets the credentials in the
 * environment, so the chain stops at `fromEnv` (bundled) and these are never loaded there.
 *
 * Everything else is bundled, the AWS SDK included, although the runtime provides it (CDK's default leaves out
 * `@aws-sdk/*` and `@smithy/*`). Chosen by measurement (docs/deploy.md, "Bundles"): importing the runtime's SDK,
 * hundreds of unminified files, took the message handler ~237 ms of CPU against ~114 ms with the SDK bundled and
 * minified (same run); bundling it adds ~270 KB, and leaving these fallbacks out takes ~115 KB (the STS and SSO
 * clients they use) back off, which keeps every bundle under {@link BUNDLE_BUDGET} (`npm run bundles`: 211-561 KB,
 * 52-97 ms).
 */
export const RUNTIME_PROVIDED_MODULES = [
  '@aws-sdk/credential-provider-sso',
  '@aws-sdk/credential-provider-ini',
  '@aws-sdk/credential-provider-process',
  '@aws-sdk/credential-provider-web-identity',
  '@aws-sdk/credential-provider-http',
  '@smithy/credential-provider-imds',
] as const;

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
