/**
 * Jest global setup: what every test file starting a local runtime would otherwise pay again. The functions are
 * bundled once (local/function-bundles.ts) and the runtimes of this run load the bundles (FUNCTION_BUNDLES_ENV,
 * inherited by Jest's workers and by child processes such as `npm start` in test/integration/cli.test.ts).
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildFunctionBundles, FUNCTION_BUNDLES_ENV } from '../../local/function-bundles.ts';

/** The global setup and teardown share Jest's main process (and this global). */
const owned = globalThis as { tenantcastBuiltBundles?: string };

/** The bundle directory this run's setup built (not one given from outside): the teardown removes it. */
export function builtBundles(): string | undefined {
  return owned.tenantcastBuiltBundles;
}

export default async function globalSetup(): Promise<void> {
  if (process.env[FUNCTION_BUNDLES_ENV] !== undefined) return;
  const dir = await mkdtemp(join(tmpdir(), 'tenantcast-function-bundles-'));
  await buildFunctionBundles(dir);
  owned.tenantcastBuiltBundles = dir;
  process.env[FUNCTION_BUNDLES_ENV] = dir;
}
