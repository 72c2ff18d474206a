import { describe, expect, it } from '@jest/globals';
import { Duration, Stack } from 'aws-cdk-lib';
import { Match } from 'aws-cdk-lib/assertions';
import { SubnetType, Vpc } from 'aws-cdk-lib/aws-ec2';
import { AuroraPostgresEngineVersion } from 'aws-cdk-lib/aws-rds';
import { functions, tenantSecretName } from '../../lambdas/manifest.ts';
import { DATA_API_ACTIONS, TENANT_POSTGRES_VERSION, TenantClusters } from '../../lib/tenant-clusters.ts';
import { newApp, stageConfig, synthStack } from './support.ts';

const dev = synthStack('dev', 'eu-west-1');
const prod = synthStack('prod', 'us-east-1');

type Resource = { Type: string; Properties: Record<string, unknown>; DeletionPolicy?: string };
type Statement = { Action: string | string[]; Resource: unknown; Effect: string };

/** The newest Aurora PostgreSQL version aws-cdk-lib knows about, compared numerically. */
function newestAuroraPostgres(): string {
  const versions = Object.values(AuroraPostgresEngineVersion)
    .filter((v): v is AuroraPostgresEngineVersion => v instanceof AuroraPostgresEngineVersion)
    .map((v) => v.auroraPostgresFullVersion)
    .filter((v) => /^\d+\.\d+$/.test(v));
  const key = (v: string) => v.split('.').map(Number) as [number, number];
  return versions.sort((a, b) => key(a)[0] - key(b)[0] || key(a)[1] - key(b)[1]).at(-1) ?? '';
}

/** IAM statements of a function's role in the realtime stack. */
function statementsOf(name: string, synthesized = dev): Statement[] {
  const role = synthesized.logicalIdOf(synthesized.stack.functions.get(name)?.role?.roleArn ?? '');
  const policies = Object.values(synthesized.template.findResources('AWS::IAM::Policy')) as Resource[];
  return policies
    .filter((p) => JSON.stringify(p.Properties.Roles) === JSON.stringify([{ Ref: role }]))
    .flatMap((p) => (p.Properties.PolicyDocument as { Statement: Statement[] }).Statement);
}

const actionsOf = (s: Statement) => (Array.isArray(s.Action) ? s.Action : [s.Action]);
const resourcesOf = (s: Statement) => (Array.isArray(s.Resource) ? s.Resource : [s.Resource]);

describe('the data stack', () => {
  it('has as many Aurora clusters as cdk.json says for the stage', () => {
    dev.dataTemplate.resourceCountIs('AWS::RDS::DBCluster', stageConfig('dev').clusters.count);
    prod.dataTemplate.resourceCountIs('AWS::RDS::DBCluster', stageConfig('prod').clusters.count);
    expect(prod.dataStack.tenantClusters.clusters.map((c) => c.id)).toEqual(['cluster-a', 'cluster-b', 'cluster-c']);
  });

  it('runs Aurora PostgreSQL on the newest version aws-cdk-lib offers', () => {
    expect(TENANT_POSTGRES_VERSION.auroraPostgresFullVersion).toBe(newestAuroraPostgres());
    dev.dataTemplate.allResourcesProperties('AWS::RDS::DBCluster', {
      Engine: 'aurora-postgresql',
      EngineVersion: TENANT_POSTGRES_VERSION.auroraPostgresFullVersion,
    });
  });

  it('enables the Data API, encrypts storage and keeps backups as long as the stage says', () => {
    for (const [synthesized, stage] of [
      [dev, stageConfig('dev')],
      [prod, stageConfig('prod')],
    ] as const) {
      synthesized.dataTemplate.allResourcesProperties('AWS::RDS::DBCluster', {
        EnableHttpEndpoint: true,
        StorageEncrypted: true,
        BackupRetentionPeriod: stage.clusters.backupRetentionDays,
        ServerlessV2ScalingConfiguration: {
          MinCapacity: stage.clusters.minCapacity,
          MaxCapacity: stage.clusters.maxCapacity,
        },
      });
    }
  });

  it('gives each cluster one Serverless v2 writer that is not publicly accessible', () => {
    dev.dataTemplate.resourceCountIs('AWS::RDS::DBInstance', stageConfig('dev').clusters.count);
    dev.dataTemplate.allResourcesProperties('AWS::RDS::DBInstance', {
      DBInstanceClass: 'db.serverless',
      PubliclyAccessible: false,
    });
  });

  it('protects and retains prod clusters, and lets dev clusters be deleted', () => {
    prod.dataTemplate.allResources('AWS::RDS::DBCluster', {
      DeletionPolicy: 'Retain',
      Properties: Match.objectLike({ DeletionProtection: true }),
    });
    dev.dataTemplate.allResources('AWS::RDS::DBCluster', {
      DeletionPolicy: 'Delete',
      Properties: Match.objectLike({ DeletionProtection: false }),
    });
    expect(prod.dataStack.terminationProtection).toBe(true);
    expect(dev.dataStack.terminationProtection).toBe(false);
  });

  it('generates the master credentials in Secrets Manager, named per stage and cluster', () => {
    for (const id of ['cluster-a', 'cluster-b']) {
      dev.dataTemplate.hasResourceProperties('AWS::SecretsManager::Secret', {
        Name: `tenantcast/dev/${id}/admin`,
        GenerateSecretString: Match.objectLike({ SecretStringTemplate: '{"username":"tenantcast_admin"}' }),
      });
    }
  });

  it('keeps each master secret exactly as long as its cluster: retained in prod, deleted in dev', () => {
    for (const [synthesized, policy] of [
      [prod, 'Retain'],
      [dev, 'Delete'],
    ] as const) {
      const resources = synthesized.dataTemplate.toJSON().Resources as Record<
        string,
        Resource & { UpdateReplacePolicy?: string }
      >;
      const attachments = Object.values(
        synthesized.dataTemplate.findResources('AWS::SecretsManager::SecretTargetAttachment'),
      );
      expect(attachments).toHaveLength(synthesized.dataStack.tenantClusters.clusters.length);
      for (const attachment of attachments as Resource[]) {
        const { SecretId, TargetId } = attachment.Properties as {
          SecretId: { Ref: string };
          TargetId: { Ref: string };
        };
        const [secret, cluster] = [resources[SecretId.Ref], resources[TargetId.Ref]];
        expect(cluster?.Type).toBe('AWS::RDS::DBCluster');
        expect([cluster?.DeletionPolicy, secret?.DeletionPolicy, secret?.UpdateReplacePolicy]).toEqual([
          policy,
          policy,
          policy,
        ]);
      }
    }
  });

  it('names master secrets outside the tenant secret prefix, so no function can read them', () => {
    const prefix = tenantSecretName('dev', '');
    const secrets = Object.values(dev.dataTemplate.findResources('AWS::SecretsManager::Secret')) as Resource[];
    expect(secrets.map((s) => String(s.Properties.Name).startsWith(prefix))).toEqual(secrets.map(() => false));
  });

  it('puts the clusters in a VPC with isolated subnets only: no NAT gateway, no internet gateway', () => {
    dev.dataTemplate.resourceCountIs('AWS::EC2::NatGateway', 0);
    dev.dataTemplate.resourceCountIs('AWS::EC2::InternetGateway', 0);
    dev.dataTemplate.allResourcesProperties('AWS::EC2::Subnet', { MapPublicIpOnLaunch: false });
    dev.dataTemplate.resourceCountIs('AWS::EC2::Route', 0);
  });

  it('admits no inbound traffic to the clusters', () => {
    dev.dataTemplate.resourceCountIs('AWS::EC2::SecurityGroupIngress', 0);
    const groups = Object.values(dev.dataTemplate.findResources('AWS::EC2::SecurityGroup')) as Resource[];
    expect(groups.map((g) => g.Properties.SecurityGroupIngress)).toEqual(groups.map(() => undefined));
  });

  it('logs the VPC traffic and the clusters to log groups kept as long as the stage says', () => {
    dev.dataTemplate.resourceCountIs('AWS::EC2::FlowLog', 1);
    dev.dataTemplate.allResourcesProperties('AWS::Logs::LogGroup', {
      RetentionInDays: stageConfig('dev').logRetentionDays,
    });
    dev.dataTemplate.hasResourceProperties('AWS::Logs::LogGroup', {
      LogGroupName: '/aws/rds/cluster/tenantcast-dev-cluster-a/postgresql',
    });
    dev.dataTemplate.allResourcesProperties('AWS::RDS::DBCluster', { EnableCloudwatchLogsExports: ['postgresql'] });
  });

  it('outputs the clusters as onboarding takes them: id, cluster ARN and master secret ARN', () => {
    const output = dev.dataTemplate.findOutputs('Clusters').Clusters as { Value: unknown };
    const text = JSON.stringify(output.Value);
    for (const id of ['cluster-a', 'cluster-b']) expect(text).toContain(`{\\"id\\":\\"${id}\\",\\"clusterArn\\":`);
    expect(text).toContain('adminSecretArn');
  });
});

describe('the tenantData binding', () => {
  const bound = functions.filter((fn) => (fn.bindings as readonly string[]).includes('tenantData'));
  const unbound = functions.filter((fn) => !(fn.bindings as readonly string[]).includes('tenantData'));
  const clusterRefs = dev.dataStack.tenantClusters.clusters.map((c) =>
    dev.dataStack.getLogicalId(c.cluster.node.defaultChild as never),
  );

  it('grants the Data API statement and transaction actions on the tenant clusters only', () => {
    for (const fn of bound) {
      const statements = statementsOf(fn.name).filter((s) => actionsOf(s).some((a) => a.startsWith('rds-data:')));
      expect({ fn: fn.name, actions: statements.flatMap(actionsOf).sort() }).toEqual({
        fn: fn.name,
        actions: [...DATA_API_ACTIONS].sort(),
      });
      const resources = statements.flatMap(resourcesOf).map((r) => JSON.stringify(r));
      expect(resources).toHaveLength(clusterRefs.length);
      for (const [i, ref] of clusterRefs.entries()) {
        // Cross-stack references to the data stack's clusters, not ARN strings.
        expect(resources[i]).toContain('"Fn::GetStackOutput"');
        expect(resources[i]).toContain(`"StackName":"${dev.dataStack.stackName}"`);
        expect(resources[i]).toContain(ref);
      }
    }
  });

  it("grants reading the stage's tenant secrets only", () => {
    for (const fn of bound) {
      const statements = statementsOf(fn.name).filter((s) => actionsOf(s).some((a) => a.startsWith('secretsmanager:')));
      expect(statements.flatMap(actionsOf)).toEqual(['secretsmanager:GetSecretValue']);
      expect(statements.flatMap(resourcesOf)).toEqual([
        {
          'Fn::Join': [
            '',
            ['arn:aws:secretsmanager:eu-west-1:', { Ref: 'AWS::AccountId' }, ':secret:tenantcast/dev/tenant/*'],
          ],
        },
      ]);
    }
  });

  it('grants nothing on rds-data or Secrets Manager with a bare * resource, to any function', () => {
    for (const fn of functions) {
      const risky = statementsOf(fn.name).filter(
        (s) =>
          actionsOf(s).some((a) => /^(rds-data|secretsmanager|rds):/.test(a)) && resourcesOf(s).some((r) => r === '*'),
      );
      expect({ fn: fn.name, risky }).toEqual({ fn: fn.name, risky: [] });
    }
  });

  it('gives functions without the binding no Data API or secret access at all', () => {
    for (const fn of unbound) {
      const actions = statementsOf(fn.name).flatMap(actionsOf);
      expect({ fn: fn.name, data: actions.filter((a) => /^(rds-data|secretsmanager):/.test(a)) }).toEqual({
        fn: fn.name,
        data: [],
      });
    }
  });

  it('uses the stage in the tenant secret prefix, as onboarding names the secrets', () => {
    expect(tenantSecretName('prod', 'acme')).toBe('tenantcast/prod/tenant/acme');
    const prodEntityApi = statementsOf('entityApi', prod).filter((s) =>
      actionsOf(s).includes('secretsmanager:GetSecretValue'),
    );
    expect(JSON.stringify(prodEntityApi)).toContain(':secret:tenantcast/prod/tenant/*');
  });
});

describe('TenantClusters', () => {
  const newClusters =
    (props: { count?: number; minCapacity?: number; maxCapacity?: number; backupDays?: number }) => () => {
      const stack = new Stack(newApp(), 'Data', { env: { region: 'eu-west-1' } });
      const vpc = new Vpc(stack, 'Vpc', {
        natGateways: 0,
        subnetConfiguration: [{ name: 'isolated', subnetType: SubnetType.PRIVATE_ISOLATED }],
      });
      return new TenantClusters(stack, 'Clusters', {
        vpc,
        stageName: 'qa',
        ...(props.count !== undefined && { count: props.count }),
        ...(props.minCapacity !== undefined && { minCapacity: props.minCapacity }),
        ...(props.maxCapacity !== undefined && { maxCapacity: props.maxCapacity }),
        ...(props.backupDays !== undefined && { backupRetention: Duration.days(props.backupDays) }),
      });
    };

  it('defaults to two retained, deletion-protected clusters', () => {
    const clusters = newClusters({})();
    expect(clusters.clusters.map((c) => c.id)).toEqual(['cluster-a', 'cluster-b']);
  });

  it('refuses a cluster count outside 1 to 26, saying what was given', () => {
    expect(newClusters({ count: 0 })).toThrow('count must be an integer from 1 to 26 (got 0)');
    expect(newClusters({ count: 27 })).toThrow('count must be an integer from 1 to 26 (got 27)');
  });

  it('refuses capacities that are not half-ACU steps or a maximum below the minimum', () => {
    expect(newClusters({ minCapacity: 0.3 })).toThrow('minCapacity must be 0 to 256 in steps of 0.5 (got 0.3)');
    expect(newClusters({ minCapacity: 8, maxCapacity: 4 })).toThrow('maxCapacity (4) must be at least minCapacity (8)');
  });

  it('refuses a backup retention over 35 days', () => {
    expect(newClusters({ backupDays: 36 })).toThrow('backupRetention must be 1 to 35 whole days (got 36)');
  });
});
