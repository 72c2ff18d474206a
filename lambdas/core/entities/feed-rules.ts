/**
 * The rules an entity's live feed (`entity:<name>`) is judged under now, for a replay of its history to compare with
 * those its messages were judged under (`Audience.rules`): the history must not outlive the rules that let it be seen
 * (found by an attacking pass: until 2026-12-05 a member replayed with `since` a row that `GET` and the change log
 * refused it since the tenant added a row filter, or took its bypass role away).
 */
import { ForbiddenError, NotFoundError } from '../errors.ts';
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
