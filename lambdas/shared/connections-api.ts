/**
 * The `@connections` Management API for the reaper, the admin API and presence: post a frame, close, check a
 * connection, all tolerating 410 Gone.
 */
import {
  ApiGatewayManagementApiClient,
  DeleteConnectionCommand,
  GetConnectionCommand,
  PostToConnectionCommand,
} from '@aws-sdk/client-apigatewaymanagementapi';
import { requireEnv } from '../core/env.ts';
import { clientConfig } from './aws.ts';

const isGone = (err: unknown) =>
  (err as { name?: string }).name === 'GoneException' ||
  (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 410;

export interface ConnectionsApi {
  /** Sends one frame; false if the connection is gone. */
  post(connectionId: string, data: string): Promise<boolean>;
  /** DeleteConnection; false if the connection was already gone. */
  close(connectionId: string): Promise<boolean>;
  /** GetConnection; false if the connection is gone (presence verifies members with it). */
  isConnected(connectionId: string): Promise<boolean>;
}

export function createConnectionsApi(): ConnectionsApi {
  const client = new ApiGatewayManagementApiClient({ ...clientConfig, endpoint: requireEnv('CONNECTIONS_ENDPOINT') });
  return {
    async post(connectionId, data) {
      try {
        await client.send(new PostToConnectionCommand({ ConnectionId: connectionId, Data: data }));
        return true;
      } catch (err) {
        if (isGone(err)) return false;
        throw err;
      }
    },
    async close(connectionId) {
      try {
        await client.send(new DeleteConnectionCommand({ ConnectionId: connectionId }));
        return true;
      } catch (err) {
        if (isGone(err)) return false;
        throw err;
      }
    },
    async isConnected(connectionId) {
      try {
        await client.send(new GetConnectionCommand({ ConnectionId: connectionId }));
        return true;
      } catch (err) {
        if (isGone(err)) return false;
        throw err;
      }
    },
  };
}
