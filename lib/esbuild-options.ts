/**
 * The esbuild settings every function bundle shares, without aws-cdk-lib: lib/bundling.ts gives them to CDK's
 * NodejsFunction, and local/function-bundles.ts uses the same ones for the bundles the tests and the benchmark run
 * in the local runtime, so what runs locally is bundled like what runs in Lambda.
 */

/**
 * Prepended to every ESM bundle so that CommonJS dependencies calling `require` keep working: ESM output has no
 * `require` of its own.
 */
export const ESM_REQUIRE_BANNER =
  "import { createRequire as __tenantcastCreateRequire } from 'node:module'; const require = __tenantcastCreateRequire(import.meta.url);";

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
