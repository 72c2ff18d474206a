/**
 * The other regions of a stage, for multi-region delivery (docs/multi-region.md): their delivery queues' URLs and
 * ARNs, computed from the deterministic queue name, so a regional stack needs no cross-stack (or cross-region)
 * reference and the regions can be deployed in any order.
 */
import { Stack, Token } from 'aws-cdk-lib';
import { Grant, type IGrantable } from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';

/** The delivery queue's physical name in every region of a stage: what peers address it by. */
export function deliveryQueueNameOf(stageName: string): string {
  return `tenantcast-${stageName}-delivery.fifo`;
}

/** What the `peers` binding needs: the stage's regions and a way to send to the other regions' delivery queues. */
export interface IStagePeers {
  /** Every region of the stage, this one included, in cdk.json order (`STAGE_REGIONS`). */
  readonly stageRegions: readonly string[];
  /** The delivery queue URL of each other region (`PEER_DELIVERY_QUEUES`). */
  readonly peerDeliveryQueueUrls: ReadonlyMap<string, string>;
  /**
   * Grants `sqs:SendMessage` on the other regions' delivery queues.
   *
   * @returns the grant, or undefined for a single-region stage (nothing to grant)
   */
  grantSendToPeers(grantee: IGrantable): Grant | undefined;
}

export interface StagePeersProps {
  /** The stage's name: part of every peer queue's name. */
  readonly stageName: string;
  /** Every region of the stage, in cdk.json order; must include the stack's own region. */
  readonly regions: readonly string[];
  /**
   * The physical name of a region's delivery queue.
   *
   * @default - `tenantcast-<stage>-delivery.fifo` ({@link deliveryQueueNameOf})
   */
  readonly queueNameOf?: (region: string) => string;
}

/**
 * The peer regions of the stack's region, within its stage. For a stage of several regions the stack's region must be
 * concrete (`env.region`), not a token.
 */
export class StagePeers extends Construct implements IStagePeers {
  readonly stageRegions: readonly string[];
  readonly peerDeliveryQueueUrls: ReadonlyMap<string, string>;
  /** The delivery queue ARN of each other region. */
  readonly peerDeliveryQueueArns: ReadonlyMap<string, string>;

  constructor(scope: Construct, id: string, props: StagePeersProps) {
    super(scope, id);
    const stack = Stack.of(this);
    const region = stack.region;
    const agnostic = Token.isUnresolved(region);
    if (agnostic && props.regions.length > 1) {
      throw new Error(
        `${this.node.path}: a stage with several regions (${props.regions.join(', ')}) needs the stack's region (env.region) to know its peers`,
      );
    }
    if (!agnostic && !props.regions.includes(region)) {
      throw new Error(
        `${this.node.path}: the stack's region (${region}) must be one of the stage's regions (got ${JSON.stringify(props.regions)})`,
      );
    }
    const duplicates = props.regions.filter((r, i) => props.regions.indexOf(r) !== i);
    if (duplicates.length > 0) {
      throw new Error(`${this.node.path}: regions must be distinct (got ${JSON.stringify(props.regions)})`);
    }
    const nameOf = props.queueNameOf ?? (() => deliveryQueueNameOf(props.stageName));
    const peers = props.regions.filter((r) => r !== region);
    this.stageRegions = [...props.regions];
    this.peerDeliveryQueueUrls = new Map(
      peers.map((peer) => [peer, `https://sqs.${peer}.${stack.urlSuffix}/${stack.account}/${nameOf(peer)}`]),
    );
    this.peerDeliveryQueueArns = new Map(
      peers.map((peer) => [peer, `arn:${stack.partition}:sqs:${peer}:${stack.account}:${nameOf(peer)}`]),
    );
  }

  grantSendToPeers(grantee: IGrantable): Grant | undefined {
    if (this.peerDeliveryQueueArns.size === 0) return undefined;
    return Grant.addToPrincipal({
      grantee,
      actions: ['sqs:SendMessage'],
      resourceArns: [...this.peerDeliveryQueueArns.values()],
    });
  }
}
