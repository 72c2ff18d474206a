/** Types of test/support/sequencer.js (plain JavaScript: Jest loads a test sequencer without transforming it). */
import type TestSequencer from '@jest/test-sequencer';

export default class SlowestFirst extends TestSequencer {}
