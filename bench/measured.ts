/**
 * The constants `npm run bench` measures for the scaling model (bench/scaling-sim.ts): written by every bench run to
 * bench/measured-constants.json, dated, with the machine and its load, and committed with the run's report.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { SdkCeiling } from './sdk-ceiling.ts';

export const MEASURED_PATH = resolve(import.meta.dirname, 'measured-constants.json');

export interface MeasuredConstants {
  /** ISO time of the bench run that measured them. */
  measuredAt: string;
  machine: string;
  loadAverage: number[];
  /** A `--quick` run measures the ceiling with fewer calls. */
  quick: boolean;
  sdkCeiling: SdkCeiling;
  gatewayPostsPerSecond: number;
}

export function writeMeasured(constants: MeasuredConstants, path = MEASURED_PATH): void {
  writeFileSync(path, `${JSON.stringify(constants, null, 2)}\n`);
}

export function readMeasured(path = MEASURED_PATH): MeasuredConstants {
  return JSON.parse(readFileSync(path, 'utf8')) as MeasuredConstants;
}
