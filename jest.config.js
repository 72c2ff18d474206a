/** Jest 30 in native ESM mode; TypeScript is stripped by @swc/jest (TypeScript 7's compiler has no JS API for ts-jest). */
export default {
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  transform: {
    '^.+\\.ts$': [
      '@swc/jest',
      {
        jsc: { parser: { syntax: 'typescript' }, target: 'es2022' },
        module: { type: 'es6' },
      },
    ],
  },
  testMatch: [
    '<rootDir>/test/**/*.test.ts',
    '<rootDir>/lambdas/**/*.test.ts',
    '<rootDir>/local/**/*.test.ts',
    '<rootDir>/client/**/*.test.ts',
    '<rootDir>/bench/**/*.test.ts',
    '<rootDir>/web/**/*.test.ts',
  ],
  testPathIgnorePatterns: ['/node_modules/', '/cdk.out/'],
  modulePathIgnorePatterns: ['<rootDir>/cdk.out/'],
  testTimeout: 30000,
  // Two workers on this two-core machine: much of an integration file's time is waiting (sockets, queues, timers),
  // which the other worker fills. Longest files first (test/support/sequencer.js) so neither waits for the other.
  maxWorkers: 2,
  testSequencer: '<rootDir>/test/support/sequencer.js',
  // Function bundles built once for every local runtime of the run (test/support/global-setup.ts).
  globalSetup: '<rootDir>/test/support/global-setup.ts',
  globalTeardown: '<rootDir>/test/support/global-teardown.ts',
  // A local runtime whose start outlived a timed-out beforeAll (a loaded machine) may still be running when its file
  // ends; without this the run would never exit and CI would wait for its own time limit. Test files stop what they
  // start (test/support/local-stack.ts also stops such late starts); this is the backstop.
  forceExit: true,
};
