/**
 * The rules an entity's live feed (`entity:<name>`) is judged under now, for a replay of its history to compare with
 * those its messages were judged under (`Audience.rules`): the history must not outlive the rules that let it be seen
 * (found by an attacking pass: until 2026-12-05 a member replayed with `since` a row that `GET` and the change log
 * refused it since the tenant added a row filter, or took its bypass role away).
 */
import type { DeliveryMessage } from '../delivery.ts';
import { ForbiddenError, NotFoundError } from '../errors.ts';
import { ENTITY_GROUP_PREFIX } from '../permissions.ts';
import { applicableRule, ruleFingerprint, ruleFor } from './access.ts';
import type { TenantData } from './service.ts';

/**
 * `(tenantId, entity)` → the fingerprint of the rule `GET` applies to the entity now (`applicableRule`, so a filter
 * the schema no longer supports counts as a change), or undefined when nobody reads it any more (no database or
 * schema, no such entity, no rule).
 */
export function feedRulesFrom(
  tenantData: (tenantId: string) => Promise<Pick<TenantData, 'schema' | 'rules'>>,
): (tenantId: string, entity: string) => Promise<string | undefined> {
  return async (tenantId, entityName) => {
    try {
      const { schema, rules } = await tenantData(tenantId);
      const entity = Object.hasOwn(schema.entities, entityName) ? schema.entities[entityName] : undefined;
      if (entity === undefined) return undefined;
      return ruleFingerprint(applicableRule(ruleFor(rules, entityName), entity));
    } catch (err) {
      if (err instanceof ForbiddenError || err instanceof NotFoundError) return undefined;
      throw err;
    }
  };
}

/**
 * Whether any of `messages` was judged under rules other than those in force (`Audience.rules`, `feedRules`): the
 * tenant changed the entity's rules, or its schema, since. Such history is not replayed: the member gets a `reset`
 * and reloads over HTTP, where the rules in force apply. In an entity's feed a message without a fingerprint counts
 * as judged under other rules (sequenced before 2026-12-05, or by a peer region on an older release; until a second
 * attacking pass such history was replayed as judged). Other groups' audiences carry none and are replayed.
 */
export async function judgedUnderOtherRules(
  tenantId: string,
  group: string,
  messages: readonly DeliveryMessage[],
  deps: {
    readonly feedRules?: (tenantId: string, entity: string) => Promise<string | undefined>;
    readonly log?: (message: string, details: Record<string, unknown>) => void;
  },
): Promise<boolean> {
  const feed = group.startsWith(ENTITY_GROUP_PREFIX);
  const judged = new Set(messages.flatMap((m) => (m.audience?.rules === undefined ? [] : [m.audience.rules])));
  const unjudged = feed && messages.some((m) => m.audience?.rules === undefined);
  if (judged.size === 0 && !unjudged) return false;
  const now = feed && !unjudged ? await deps.feedRules?.(tenantId, group.slice(ENTITY_GROUP_PREFIX.length)) : undefined;
  const changed = unjudged || [...judged].some((rules) => rules !== now);
  if (changed) deps.log?.('replay refused: judged under other rules', { tenantId, group, judged: [...judged], now });
  return changed;
}
