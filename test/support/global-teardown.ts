/** Jest global teardown: removes the function bundles test/support/global-setup.ts built for this run. */
import { rm } from 'node:fs/promises';
import { builtBundles } from './global-setup.ts';

export default async function globalTeardown(): Promise<void> {
  const dir = builtBundles();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
}
