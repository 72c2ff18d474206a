import { describe, expect, it } from '@jest/globals';
import SlowestFirst from './sequencer.js';

const context = { config: { rootDir: '/repo', cache: false }, hasteFS: { getSize: (path: string) => path.length } };
const test = (path: string) => ({ path: `/repo/${path}`, context });
type Tests = Parameters<SlowestFirst['sort']>[0];
/** The sequencer's order of `paths` (Jest's Test objects reduced to what the sequencer reads). */
const order = async (paths: string[]) => {
  const sequencer = new SlowestFirst({ contexts: new Set(), globalConfig: {} } as never);
  const sorted = await sequencer.sort(paths.map(test) as unknown as Tests);
  return sorted.map((t) => t.path.slice('/repo/'.length));
};

describe('the test sequencer without timings of a previous run (a fresh clone)', () => {
  it('runs the known slowest files first, then files that start a runtime, then the rest by size', async () => {
    expect(
      await order([
        'lambdas/core/a-long-unit-test-file-name.test.ts',
        'test/integration/auth.test.ts',
        'local/sqs.test.ts',
        'client/x.test.ts',
        'test/integration/large-group.test.ts',
      ]),
    ).toEqual([
      'test/integration/large-group.test.ts',
      'local/sqs.test.ts',
      'test/integration/auth.test.ts',
      'lambdas/core/a-long-unit-test-file-name.test.ts',
      'client/x.test.ts',
    ]);
  });
});
