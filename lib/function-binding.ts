/**
 * Bindings connect a function to a shared resource: the environment keys the manifest lists for the binding
 * (`bindingEnv` in lambdas/manifest.ts) plus the IAM grants the function needs, applied together by
 * {@link TenantcastFunction.bind}.
 */

import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import type { Grant, IGrantable } from 'aws-cdk-lib/aws-iam';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import type { Binding } from '../lambdas/manifest.ts';
import type { AuthConfig } from './config.ts';
import { acknowledgeWildcardResource } from './nag.ts';
import type { IStagePeers } from './stage-peers.ts';

/** A resource a function can be bound to. */
export interface IFunctionBinding {
  /** Which manifest binding this satisfies; its environment keys must be exactly `bindingEnv[binding]`. */
  readonly binding: Binding;
  /** Environment variables to set on the function. */
  readonly environment: Readonly<Record<string, string>>;
  /**
   * Grants the function what the binding needs.
   *
   * @returns the grant, or undefined when the binding needs no permissions
   */
  grantTo(grantee: IGrantable): Grant | undefined;
}

/** A WebSocket API stage whose connections can be managed (post to, get, delete). */
export interface IConnectionsEndpoint {
  /** The stage's `@connections` endpoint: `https://{apiId}.execute-api.{region}.amazonaws.com/{stage}`. */
  readonly callbackUrl: string;
  /** Grants `execute-api:ManageConnections` on this stage's connections only. */
  grantManageConnections(grantee: IGrantable): Grant;
}

/** The tenant databases (Aurora clusters behind the RDS Data API) and their per-tenant secrets. */
export interface ITenantDataPlane {
  /**
   * Grants the Data API statement and transaction actions on the tenant clusters only, and
   * `secretsmanager:GetSecretValue` on the stage's tenant secrets only.
   */
  grantTenantDataAccess(grantee: IGrantable): Grant;
}

/** Factories for the manifest's bindings. */
export const FunctionBinding = {
  /** `TABLE_NAME`; read/write on the table and its indexes (`grantReadWriteData`). */
  table(table: ITable): IFunctionBinding {
    return {
      binding: 'table',
      environment: { TABLE_NAME: table.tableName },
      grantTo: (grantee) => {
        acknowledgeWildcardResource(
          grantee,
          `${table.tableArn}/index/*`,
          "Queries of the main table use its global secondary indexes; `index/*` covers this one table's indexes only.",
        );
        return table.grantReadWriteData(grantee);
      },
    };
  },

  /** `DELIVERY_QUEUE_URL`; `sqs:SendMessage` and friends (`grantSendMessages`). */
  deliveryQueue(queue: IQueue): IFunctionBinding {
    return {
      binding: 'deliveryQueue',
      environment: { DELIVERY_QUEUE_URL: queue.queueUrl },
      grantTo: (grantee) => queue.grantSendMessages(grantee),
    };
  },

  /** `FANOUT_QUEUE_URL`; `sqs:SendMessage` and friends on the fan-out queue (pages of large groups). */
  fanoutQueue(queue: IQueue): IFunctionBinding {
    return {
      binding: 'fanoutQueue',
      environment: { FANOUT_QUEUE_URL: queue.queueUrl },
      grantTo: (grantee) => queue.grantSendMessages(grantee),
    };
  },

  /** `CONNECTIONS_ENDPOINT`; `execute-api:ManageConnections` on the stage's `@connections`. */
  connections(endpoint: IConnectionsEndpoint): IFunctionBinding {
    return {
      binding: 'connections',
      environment: { CONNECTIONS_ENDPOINT: endpoint.callbackUrl },
      grantTo: (grantee) => endpoint.grantManageConnections(grantee),
    };
  },

  /** `CHANGES_QUEUE_URL`; `sqs:SendMessage` and friends on the changes queue (`grantSendMessages`). */
  changesQueue(queue: IQueue): IFunctionBinding {
    return {
      binding: 'changesQueue',
      environment: { CHANGES_QUEUE_URL: queue.queueUrl },
      grantTo: (grantee) => queue.grantSendMessages(grantee),
    };
  },

  /** `REPLICATION_QUEUE_URL`; `sqs:SendMessage` and friends on the replication queue (docs/multi-region.md). */
  replicationQueue(queue: IQueue): IFunctionBinding {
    return {
      binding: 'replicationQueue',
      environment: { REPLICATION_QUEUE_URL: queue.queueUrl },
      grantTo: (grantee) => queue.grantSendMessages(grantee),
    };
  },

  /**
   * `STAGE_REGIONS` and `PEER_DELIVERY_QUEUES` (`region=url` pairs); `sqs:SendMessage` on the other regions'
   * delivery queues (docs/multi-region.md).
   */
  peers(peers: IStagePeers): IFunctionBinding {
    return {
      binding: 'peers',
      environment: {
        STAGE_REGIONS: peers.stageRegions.join(' '),
        PEER_DELIVERY_QUEUES: [...peers.peerDeliveryQueueUrls].map(([region, url]) => `${region}=${url}`).join(' '),
      },
      grantTo: (grantee) => peers.grantSendToPeers(grantee),
    };
  },

  /**
   * No environment (each tenant's cluster, database and secret come from the tenant catalog); Data API statements
   * on the tenant clusters and reading the stage's tenant secrets.
   */
  tenantData(plane: ITenantDataPlane): IFunctionBinding {
    return {
      binding: 'tenantData',
      environment: {},
      grantTo: (grantee) => plane.grantTenantDataAccess(grantee),
    };
  },

  /** `JWT_ISSUER`, `JWT_AUDIENCE`, `JWKS_URI`, claim names and the origin allowlist; no permissions. */
  auth(auth: AuthConfig): IFunctionBinding {
    return {
      binding: 'auth',
      environment: {
        JWT_ISSUER: auth.issuer,
        JWT_AUDIENCE: auth.audience,
        JWKS_URI: auth.jwksUri,
        CLAIM_TENANT: auth.claims.tenant,
        CLAIM_USER: auth.claims.user,
        CLAIM_ROLES: auth.claims.roles,
        ALLOWED_ORIGINS: auth.allowedOrigins.join(' '),
        ALLOW_MISSING_ORIGIN: String(auth.allowMissingOrigin),
      },
      grantTo: () => undefined,
    };
  },
} as const;
