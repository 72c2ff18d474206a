#!/usr/bin/env -S npx tsx
/**
 * The CDK app: a DataStack and a RealtimeStack per stage x region from cdk.json, checked by cdk-nag (AWS Solutions)
 * on every synth. `cdk synth -c stage=dev` builds one stage.
 */
import { App } from 'aws-cdk-lib';
import { ConfigError } from '../lib/config.ts';
import { addComplianceChecks, addRealtimeStacks } from '../lib/tenantcast-app.ts';

const app = new App();
try {
  addRealtimeStacks(app);
  addComplianceChecks(app);
  app.synth();
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  console.error(error.message);
  process.exitCode = 1;
}
