#!/usr/bin/env -S npx tsx
/** The CDK app: one RealtimeStack per stage x region from cdk.json. `cdk synth -c stage=dev` builds one stage. */
import { App } from 'aws-cdk-lib';
import { ConfigError } from '../lib/config.ts';
import { addRealtimeStacks } from '../lib/tenantcast-app.ts';

const app = new App();
try {
  addRealtimeStacks(app);
  app.synth();
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  console.error(error.message);
  process.exitCode = 1;
}
