import { ArnFormat, CfnResource, Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import { type IVpc, SubnetType } from 'aws-cdk-lib/aws-ec2';
import { Grant, type IGrantable } from 'aws-cdk-lib/aws-iam';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import {
  AuroraPostgresEngineVersion,
  ClusterInstance,
  Credentials,
  DatabaseCluster,
  DatabaseClusterEngine,
} from 'aws-cdk-lib/aws-rds';
import { Construct } from 'constructs';
import { tenantSecretPrefix } from '../lambdas/manifest.ts';
import type { ITenantDataPlane } from './function-binding.ts';
import { acknowledgeWildcardResource } from './nag.ts';

/** The Aurora PostgreSQL version of new tenant clusters: the newest one aws-cdk-lib offers. */
export const TENANT_POSTGRES_VERSION = AuroraPostgresEngineVersion.VER_18_6;

/** The master user of every tenant cluster (onboarding creates databases and tenant roles with it). */
export const CLUSTER_ADMIN_USER = 'tenantcast_admin';

/**
 * What the `tenantData` binding may do on the tenant clusters through the RDS Data API: statements and
 * transactions, nothing else (no `ExecuteSql`, no cluster management).
 */
export const DATA_API_ACTIONS = [
  'rds-data:ExecuteStatement',
  'rds-data:BatchExecuteStatement',
  'rds-data:BeginTransaction',
  'rds-data:CommitTransaction',
  'rds-data:RollbackTransaction',
] as const;

export interface TenantClustersProps {
  /** Where the clusters live; they use its isolated subnets (the Data API needs no network path from Lambda). */
  readonly vpc: IVpc;

  /** The tenantcast stage: part of cluster identifiers, secret names and the tenant secret prefix. */
  readonly stageName: string;

  /**
   * How many clusters, with ids `cluster-a`, `cluster-b`, … (1 to 26).
   *
   * @default 2
   */
  readonly count?: number;

  /**
   * Least Aurora capacity units of each writer (0 to 256 in steps of 0.5; 0 lets an idle cluster pause).
   *
   * @default 0.5
   */
  readonly minCapacity?: number;

  /**
   * Most Aurora capacity units of each writer (1 to 256 in steps of 0.5, at least `minCapacity`).
   *
   * @default 4
   */
  readonly maxCapacity?: number;

  /**
   * How long automated backups are kept (1 to 35 days).
   *
   * @default Duration.days(7)
   */
  readonly backupRetention?: Duration;

  /**
   * What happens to the clusters (and their data) when they leave the stack.
   *
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;

  /**
   * Whether RDS refuses to delete a cluster until protection is turned off.
   *
   * @default - true when the removal policy is RETAIN, false otherwise
   */
  readonly deletionProtection?: boolean;

  /**
   * How long the clusters' PostgreSQL logs are kept in CloudWatch Logs.
   *
   * @default RetentionDays.ONE_MONTH
   */
  readonly logRetention?: RetentionDays;

  /**
   * Engine version of the clusters.
   *
   * @default TENANT_POSTGRES_VERSION
   */
  readonly engineVersion?: AuroraPostgresEngineVersion;
}

/** One tenant cluster: its short id (the placement shard in the tenant catalog) and the cluster. */
export interface TenantCluster {
  /** `cluster-a`, `cluster-b`, …: the `clusterId` of the tenants placed on it. */
  readonly id: string;
  readonly cluster: DatabaseCluster;
}

const MAX_CLUSTERS = 26;

/**
 * Gives the cluster's generated master secret (and its attachment to the cluster) the cluster's removal policy:
 * aws-cdk-lib deletes a generated secret with the stack even when the cluster is retained, which would leave a
 * retained cluster whose admin password nobody can read.
 */
function retainSecretsWithCluster(cluster: DatabaseCluster, removalPolicy: RemovalPolicy): void {
  for (const child of cluster.node.findAll()) {
    if (CfnResource.isCfnResource(child) && child.cfnResourceType.startsWith('AWS::SecretsManager::')) {
      child.applyRemovalPolicy(removalPolicy);
    }
  }
}

/**
 * N Aurora Serverless v2 PostgreSQL clusters holding the tenant databases (docs/tenants.md): Data API enabled,
 * storage encrypted, automated backups, isolated subnets, a security group admitting nothing, master credentials
 * generated in Secrets Manager (`tenantcast/<stage>/<cluster id>/admin`, kept or deleted with the cluster) and
 * PostgreSQL logs in CloudWatch.
 *
 * Functions reach them through {@link TenantClusters.grantTenantDataAccess}: Data API statements on these clusters
 * only, and reading the stage's tenant secrets only (never the master secrets).
 */
export class TenantClusters extends Construct implements ITenantDataPlane {
  readonly clusters: readonly TenantCluster[];
  readonly stageName: string;

  constructor(scope: Construct, id: string, props: TenantClustersProps) {
    super(scope, id);
    const count = props.count ?? 2;
    const minCapacity = props.minCapacity ?? 0.5;
    const maxCapacity = props.maxCapacity ?? 4;
    const backupDays = (props.backupRetention ?? Duration.days(7)).toDays();
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;
    const deletionProtection = props.deletionProtection ?? removalPolicy === RemovalPolicy.RETAIN;
    this.validate({ stageName: props.stageName, count, minCapacity, maxCapacity, backupDays });
    this.stageName = props.stageName;

    const clusters: TenantCluster[] = [];
    for (let i = 0; i < count; i++) {
      const clusterId = `cluster-${String.fromCharCode(97 + i)}`;
      const identifier = `tenantcast-${props.stageName}-${clusterId}`;
      // Named as RDS names it, so retention applies from the first line (no log-retention custom resource).
      const logGroup = new LogGroup(this, `${clusterId}-logs`, {
        logGroupName: `/aws/rds/cluster/${identifier}/postgresql`,
        retention: props.logRetention ?? RetentionDays.ONE_MONTH,
        removalPolicy,
      });
      const cluster = new DatabaseCluster(this, clusterId, {
        engine: DatabaseClusterEngine.auroraPostgres({ version: props.engineVersion ?? TENANT_POSTGRES_VERSION }),
        clusterIdentifier: identifier,
        writer: ClusterInstance.serverlessV2('writer', { publiclyAccessible: false, autoMinorVersionUpgrade: true }),
        serverlessV2MinCapacity: minCapacity,
        serverlessV2MaxCapacity: maxCapacity,
        vpc: props.vpc,
        vpcSubnets: { subnetType: SubnetType.PRIVATE_ISOLATED },
        credentials: Credentials.fromGeneratedSecret(CLUSTER_ADMIN_USER, {
          secretName: `tenantcast/${props.stageName}/${clusterId}/admin`,
        }),
        enableDataApi: true,
        storageEncrypted: true,
        iamAuthentication: false,
        backup: { retention: Duration.days(backupDays) },
        cloudwatchLogsExports: ['postgresql'],
        copyTagsToSnapshot: true,
        deletionProtection,
        removalPolicy,
      });
      cluster.node.addDependency(logGroup);
      retainSecretsWithCluster(cluster, removalPolicy);
      this.acknowledgeFindings(cluster, deletionProtection);
      clusters.push({ id: clusterId, cluster });
    }
    this.clusters = clusters;
  }

  /** The ARN pattern of the stage's tenant secrets: `arn:…:secret:tenantcast/<stage>/tenant/*`. */
  get tenantSecretArnPattern(): string {
    return Stack.of(this).formatArn({
      service: 'secretsmanager',
      resource: 'secret',
      resourceName: `${tenantSecretPrefix(this.stageName)}*`,
      arnFormat: ArnFormat.COLON_RESOURCE_NAME,
    });
  }

  /**
   * Grants the RDS Data API statement and transaction actions ({@link DATA_API_ACTIONS}) on these clusters, and
   * `secretsmanager:GetSecretValue` on the stage's tenant secrets ({@link tenantSecretArnPattern}), which the Data
   * API reads on the caller's behalf.
   *
   * Written by hand: `DatabaseCluster.grantDataApiAccess` would also grant reading the master secret.
   */
  grantTenantDataAccess(grantee: IGrantable): Grant {
    const statements = Grant.addToPrincipal({
      grantee,
      actions: [...DATA_API_ACTIONS],
      resourceArns: this.clusters.map((c) => c.cluster.clusterArn),
    });
    acknowledgeWildcardResource(
      grantee,
      this.tenantSecretArnPattern,
      "Tenant secrets are created at onboarding, after deployment, and their ARNs end in a random suffix; the grant is limited to the stage's tenant secret prefix (never the cluster master secrets).",
    );
    const secrets = Grant.addToPrincipal({
      grantee,
      actions: ['secretsmanager:GetSecretValue'],
      resourceArns: [this.tenantSecretArnPattern],
    });
    return statements.combine(secrets);
  }

  private acknowledgeFindings(cluster: DatabaseCluster, deletionProtection: boolean): void {
    Validations.of(cluster).acknowledge(
      {
        id: 'AwsSolutions-RDS6',
        reason:
          'Tenant databases are reached only through the RDS Data API, which authenticates with Secrets Manager secrets; IAM database authentication does not apply to it.',
      },
      {
        id: 'AwsSolutions-RDS11',
        reason:
          'Nothing connects to the port: the cluster is in isolated subnets, its security group admits no inbound traffic, and the Data API does not use it. A non-default port would add nothing.',
      },
      {
        id: 'AwsSolutions-RDS14',
        reason:
          'Backtrack exists for Aurora MySQL only; these are Aurora PostgreSQL clusters (point-in-time restore from backups instead).',
      },
    );
    // On the cluster: its generated master secret is a child of it.
    Validations.of(cluster).acknowledge({
      id: 'AwsSolutions-SMG4',
      reason:
        'The master secret is used only by operators onboarding tenants. Rotation needs a rotation function with a network path to the cluster and to Secrets Manager, which these isolated subnets deliberately lack; operators rotate it by hand.',
    });
    if (!deletionProtection) {
      Validations.of(cluster).acknowledge({
        id: 'AwsSolutions-RDS10',
        reason:
          'Deletion protection is off in non-production stages only, so they can be torn down; prod clusters have it.',
      });
    }
  }

  private validate(values: {
    stageName: string;
    count: number;
    minCapacity: number;
    maxCapacity: number;
    backupDays: number;
  }): void {
    const problems: string[] = [];
    const { stageName, count, minCapacity, maxCapacity, backupDays } = values;
    if (!/^[a-z][a-z0-9-]{0,19}$/.test(stageName)) {
      problems.push(`stageName must be lower-case letters, digits and '-', at most 20 characters (got '${stageName}')`);
    }
    if (!Number.isInteger(count) || count < 1 || count > MAX_CLUSTERS) {
      problems.push(`count must be an integer from 1 to ${MAX_CLUSTERS} (got ${count})`);
    }
    const isCapacity = (v: number, min: number) => v >= min && v <= 256 && Number.isInteger(v * 2);
    if (!isCapacity(minCapacity, 0)) problems.push(`minCapacity must be 0 to 256 in steps of 0.5 (got ${minCapacity})`);
    if (!isCapacity(maxCapacity, 1)) problems.push(`maxCapacity must be 1 to 256 in steps of 0.5 (got ${maxCapacity})`);
    if (maxCapacity < minCapacity) {
      problems.push(`maxCapacity (${maxCapacity}) must be at least minCapacity (${minCapacity})`);
    }
    if (!Number.isInteger(backupDays) || backupDays < 1 || backupDays > 35) {
      problems.push(`backupRetention must be 1 to 35 whole days (got ${backupDays})`);
    }
    if (problems.length > 0) throw new Error(`${this.node.path}: ${problems.join('; ')}`);
  }
}
