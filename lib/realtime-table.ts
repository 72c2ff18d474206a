import { RemovalPolicy } from 'aws-cdk-lib';
import { AttributeType, BillingMode, Table, TableEncryption } from 'aws-cdk-lib/aws-dynamodb';
import type { Construct } from 'constructs';
import { table as manifestTable } from '../lambdas/manifest.ts';

/** The table layout, as `table` in lambdas/manifest.ts describes it. Every key attribute is a string. */
export interface RealtimeTableSpec {
  readonly partitionKey: string;
  readonly sortKey: string;
  readonly timeToLiveAttribute: string;
  readonly globalSecondaryIndexes: readonly {
    readonly indexName: string;
    readonly partitionKey: string;
    readonly sortKey: string;
  }[];
}

export interface RealtimeTableProps {
  /**
   * Keys, TTL attribute and indexes.
   *
   * @default - `table` from lambdas/manifest.ts
   */
  readonly spec?: RealtimeTableSpec;

  /**
   * What happens to the table (and its data) when it leaves the stack.
   *
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;

  /**
   * Whether DynamoDB refuses to delete the table until protection is turned off.
   *
   * @default - true when the removal policy is RETAIN, false otherwise
   */
  readonly deletionProtection?: boolean;
}

const ATTRIBUTE_NAME = /^[A-Za-z0-9_.-]{1,255}$/;

/**
 * The single DynamoDB table holding connections, memberships and tenants (docs/data-model.md): on-demand capacity,
 * TTL, point-in-time recovery, encryption with the AWS-managed KMS key, and the manifest's global secondary indexes.
 *
 * Grant access with the inherited `grantReadWriteData` (dynamodb:GetItem, PutItem, UpdateItem, DeleteItem, Query,
 * Scan, BatchGetItem, BatchWriteItem, ConditionCheckItem, ... on the table and its indexes).
 */
export class RealtimeTable extends Table {
  /** The spec the table was built from. */
  readonly spec: RealtimeTableSpec;

  constructor(scope: Construct, id: string, props: RealtimeTableProps = {}) {
    const spec = props.spec ?? manifestTable;
    validateSpec(`${scope.node.path}/${id}`, spec);
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;

    super(scope, id, {
      partitionKey: { name: spec.partitionKey, type: AttributeType.STRING },
      sortKey: { name: spec.sortKey, type: AttributeType.STRING },
      billingMode: BillingMode.PAY_PER_REQUEST,
      timeToLiveAttribute: spec.timeToLiveAttribute,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      encryption: TableEncryption.AWS_MANAGED,
      removalPolicy,
      deletionProtection: props.deletionProtection ?? removalPolicy === RemovalPolicy.RETAIN,
    });
    this.spec = spec;

    for (const index of spec.globalSecondaryIndexes) {
      this.addGlobalSecondaryIndex({
        indexName: index.indexName,
        partitionKey: { name: index.partitionKey, type: AttributeType.STRING },
        sortKey: { name: index.sortKey, type: AttributeType.STRING },
      });
    }
  }
}

function validateSpec(where: string, spec: RealtimeTableSpec): void {
  const names: [string, string][] = [
    ['partitionKey', spec.partitionKey],
    ['sortKey', spec.sortKey],
    ['timeToLiveAttribute', spec.timeToLiveAttribute],
    ...spec.globalSecondaryIndexes.flatMap((i): [string, string][] => [
      [`${i.indexName}.partitionKey`, i.partitionKey],
      [`${i.indexName}.sortKey`, i.sortKey],
    ]),
  ];
  for (const [field, name] of names) {
    if (!ATTRIBUTE_NAME.test(name)) {
      throw new Error(`${where}: ${field} must be an attribute name (got '${name}')`);
    }
  }
  if (spec.partitionKey === spec.sortKey) {
    throw new Error(`${where}: partitionKey and sortKey must differ (both are '${spec.partitionKey}')`);
  }
  const indexNames = spec.globalSecondaryIndexes.map((i) => i.indexName);
  const duplicate = indexNames.find((n, i) => indexNames.indexOf(n) !== i);
  if (duplicate !== undefined) throw new Error(`${where}: index '${duplicate}' is declared twice`);
  if (indexNames.length > 20) {
    throw new Error(`${where}: DynamoDB allows at most 20 global secondary indexes (got ${indexNames.length})`);
  }
}
