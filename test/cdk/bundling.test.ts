/**
 * The one test that bundles for real (esbuild, no Docker): it needs every handler in lambdas/manifest.ts to exist.
 * Sizes are deterministic, so the size budget is asserted here; import times only in `npm run bundles`.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from '@jest/globals';
import { Stack } from 'aws-cdk-lib';
import { functions } from '../../lambdas/manifest.ts';
import { BUNDLE_BUDGET, ESM_REQUIRE_BANNER, RUNTIME_PROVIDED_MODULES } from '../../lib/bundling.ts';
import { RealtimeStack } from '../../lib/realtime-stack.ts';
import { newApp, newDataStack, stageConfig } from './support.ts';

const outdir = mkdtempSync(path.join(tmpdir(), 'tenantcast-cdk-'));
afterAll(() => rmSync(outdir, { recursive: true, force: true }));

/** The AWS SDK and Smithy packages a bundle imports at run time instead of containing them. */
function sdkImportsOf(code: string): string[] {
  const specifiers = [...code.matchAll(/(?:from|import)\s*\(?\s*["']((?:@aws-sdk|@smithy)\/[^"']+)["']/g)];
  return [...new Set(specifiers.map((m) => m[1] as string))].sort();
}

/**
 * Whether a bundle contains the X-Ray SDK: its automatic mode's namespace name, a string literal minifying keeps
 * (aws-xray-sdk-core, context_utils). Loading the SDK turns on async hooks for every promise (lambdas/shared/tracer.ts).
 */
function containsXRaySdk(code: string): boolean {
  return /["']AWSXRay["']/.test(code);
}

describe('bundling', () => {
  it('turns every manifest handler into an ESM asset with the createRequire banner and a source map, the AWS SDK inside, the X-Ray SDK only where the manifest traces in process, within the size budget', () => {
    const app = newApp({ bundle: true, outdir });
    const stage = stageConfig('dev');
    const stack = new RealtimeStack(app, 'tenantcast-dev-eu-west-1', {
      env: { region: 'eu-west-1' },
      stage,
      tenantData: newDataStack(app, stage, 'eu-west-1').tenantClusters,
    });
    const assembly = app.synth();
    const resources = assembly.getStackByName(stack.stackName).template.Resources as Record<
      string,
      { Type: string; Properties: { Code?: { S3Key?: string } } }
    >;

    const sizes: Record<string, number> = {};
    for (const spec of functions) {
      const fn = stack.functions.get(spec.name);
      if (!fn) throw new Error(`no function '${spec.name}'`);
      const s3Key = resources[Stack.of(fn).getLogicalId(fn.node.defaultChild as never)]?.Properties.Code?.S3Key;
      const assetDir = path.join(outdir, `asset.${s3Key?.replace(/\.zip$/, '')}`);
      const bundle = path.join(assetDir, 'index.mjs');

      expect({ handler: spec.name, bundled: existsSync(bundle) }).toEqual({ handler: spec.name, bundled: true });
      const code = readFileSync(bundle, 'utf8');
      expect(code.startsWith(ESM_REQUIRE_BANNER)).toBe(true);
      expect(code).toMatch(
        /export\s*\{[^}]*\bas handler\b|export\s*\{\s*handler\s*\}|export\s+(async\s+)?(const|function)\s+handler/,
      );
      expect(existsSync(path.join(assetDir, 'index.mjs.map'))).toBe(true);
      // The SDK is bundled (faster to import than the runtime's copy, lib/bundling.ts) but for the credential
      // chain's fallbacks.
      const external = sdkImportsOf(code).filter((m) => !(RUNTIME_PROVIDED_MODULES as readonly string[]).includes(m));
      expect({ handler: spec.name, external }).toEqual({ handler: spec.name, external: [] });
      // The X-Ray SDK is in exactly the functions whose manifest entry traces in process; the ones that run for
      // every message go without (lambdas/manifest.ts, `inProcessTracing`).
      expect({ handler: spec.name, xray: containsXRaySdk(code) }).toEqual({
        handler: spec.name,
        xray: spec.inProcessTracing,
      });
      sizes[spec.name] = Buffer.byteLength(code);
    }
    const overBudget = Object.entries(sizes).filter(([, bytes]) => bytes > BUNDLE_BUDGET.bytes);
    expect(overBudget).toEqual([]);
  });
});
