import { type App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { dataStackNameOf, loadConfig, stackNameOf } from './config.ts';
import { DataStack } from './data-stack.ts';
import { RealtimeStack } from './realtime-stack.ts';

/**
 * Adds, per stage and region configured in cdk.json (context `tenantcast`), or only for the stage selected with
 * `-c stage=NAME`: a stateful {@link DataStack} `tenantcast-{stage}-{region}-data` (the tenant clusters) and the
 * {@link RealtimeStack} `tenantcast-{stage}-{region}` using it.
 *
 * @returns the realtime stacks (each one's tenant clusters are `stack.tenantData`)
 * @throws ConfigError when the configuration is invalid
 */
export function addRealtimeStacks(app: App): RealtimeStack[] {
  const config = loadConfig(app.node);
  return config.stages.flatMap((stage) =>
    stage.regions.map((region) => {
      const env = { account: stage.account ?? process.env.CDK_DEFAULT_ACCOUNT, region };
      const data = new DataStack(app, dataStackNameOf(stage, region), {
        stackName: dataStackNameOf(stage, region),
        env,
        stage,
      });
      return new RealtimeStack(app, stackNameOf(stage, region), {
        stackName: stackNameOf(stage, region),
        env,
        stage,
        tenantData: data.tenantClusters,
      });
    }),
  );
}

/**
 * Runs cdk-nag's AWS Solutions checks on every synthesis of the app: an unacknowledged finding fails it. Findings are
 * acknowledged, with the reason, on the construct they concern (`Validations.of(construct).acknowledge`).
 */
export function addComplianceChecks(app: App): void {
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
}
