/**
 * The one test that bundles for real (esbuild, no Docker): it needs every handler in lambdas/manifest.ts to exist.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from '@jest/globals';
import { Stack } from 'aws-cdk-lib';
import { functions } from '../../lambdas/manifest.ts';
import { RealtimeStack } from '../../lib/realtime-stack.ts';
import { ESM_REQUIRE_BANNER } from '../../lib/tenantcast-function.ts';
import { newApp, newDataStack, stageConfig } from './support.ts';

const outdir = mkdtempSync(path.join(tmpdir(), 'tenantcast-cdk-'));
afterAll(() => rmSync(outdir, { recursive: true, force: true }));

describe('bundling', () => {
  it('turns every manifest handler into an ESM asset with the createRequire banner and a source map', () => {
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
    }
  });
});
