/**
 * Jest's test order with two workers: the longest files first, so that neither worker is left with a long file at
 * the end while the other is idle. Jest does this by itself from the durations of the previous run on this machine
 * (its cache); a fresh clone (CI) has none and Jest falls back to file size, which puts the 2,000-member test, a short
 * file, near the end. Without timing information, the files below go first, in this order (the slowest files of a
 * measured run, longest first), then files that start a local runtime or a browser, then the rest by size.
 *
 * The list keeps the two files that keep many sandboxes busy (the 2,000-member group and the fuzzer) apart: the
 * other worker runs two lighter files (~37 s) while the first runs the group (~34 s), so the fuzzer goes to whichever
 * frees first, normally the first. Measured on fresh clones in the same hour: started together, each took 53 s; one
 * after the other, 34 s and 28 s.
 */
import jestSequencer from '@jest/test-sequencer';

/** The package is CommonJS with `exports.default`. */
const TestSequencer = jestSequencer.default ?? jestSequencer;

const SLOWEST = [
  'test/integration/large-group.test.ts',
  'test/integration/client.test.ts',
  'test/browser/restart.test.ts',
  'test/integration/fuzz.test.ts',
  'test/integration/documented-commands.test.ts',
  'test/browser/demo.test.ts',
  'test/integration/delivery.test.ts',
  'local/sqs.test.ts',
  'test/integration/restart.test.ts',
  'test/integration/onboarding.test.ts',
  'test/security/gateway-attacks.test.ts',
];
const RUNTIME_DIRS = ['test/integration/', 'test/browser/', 'test/security/'];

export default class SlowestFirst extends TestSequencer {
  async sort(tests) {
    const sorted = await super.sort(tests);
    if (sorted.some((test) => test.duration !== undefined)) return sorted;
    const relative = (test) => test.path.slice(test.context.config.rootDir.length + 1);
    const rank = (test) => {
      const at = SLOWEST.indexOf(relative(test));
      if (at >= 0) return at;
      return RUNTIME_DIRS.some((dir) => relative(test).startsWith(dir)) ? SLOWEST.length : SLOWEST.length + 1;
    };
    // Array.prototype.sort is stable: within a rank, Jest's order (by size) stays.
    return [...sorted].sort((a, b) => rank(a) - rank(b));
  }
}
