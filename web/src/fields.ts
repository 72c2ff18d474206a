/**
 * Rendering and editing fields generically from the tenant's schema, so acme's tasks (title, status, assignee, due
 * date) and globex's (summary, priority, done, owner) use the same page: column choice, labels, cell text, form
 * input kinds, parsing what was typed into the JSON the API's validation expects, and the fields an edit changed.
 */
import type { EntitySpec, FieldSpec, FieldType, Row } from './schema.ts';

export interface Column {
  readonly name: string;
  readonly label: string;
  readonly field: FieldSpec;
}

/** `assignee_id` → `Assignee`, `due_date` → `Due date`, `startsAt` → `Starts at`. */
export function labelOf(name: string): string {
  const words = name
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .replace(/_id$/i, '')
    .split(/[_\s]+/)
    .filter((w) => w !== '')
    .map((w) => w.toLowerCase());
  const text = words.join(' ');
  return text === '' ? name : text.charAt(0).toUpperCase() + text.slice(1);
}

/** The columns a list shows: every field in schema order, but not a UUID primary key (noise to a reader). */
export function columnsOf(spec: EntitySpec): Column[] {
  return Object.entries(spec.fields)
    .filter(([name, field]) => !(name === spec.primaryKey && field.type === 'uuid'))
    .map(([name, field]) => ({ name, label: labelOf(name), field }));
}

/** The fields a form edits: all but the primary key. */
export function editableFields(spec: EntitySpec): Column[] {
  return columnsOf(spec).filter((c) => c.name !== spec.primaryKey);
}

/** A cell's text. `null` and absent values are empty. */
export function formatCell(value: unknown, type: FieldType): string {
  if (value === null || value === undefined) return '';
  switch (type) {
    case 'boolean':
      return value === true ? 'yes' : 'no';
    case 'text[]':
      return Array.isArray(value) ? value.map(String).join(', ') : String(value);
    case 'jsonb':
      return JSON.stringify(value);
    case 'timestamptz': {
      const ms = Date.parse(String(value));
      return Number.isNaN(ms) ? String(value) : `${new Date(ms).toISOString().slice(0, 16).replace('T', ' ')} UTC`;
    }
    default:
      return typeof value === 'object' ? JSON.stringify(value) : String(value);
  }
}

export type InputKind = 'text' | 'number' | 'checkbox' | 'date' | 'textarea';

export function inputKindOf(type: FieldType): InputKind {
  switch (type) {
    case 'int':
    case 'numeric':
      return 'number';
    case 'boolean':
      return 'checkbox';
    case 'date':
      return 'date';
    case 'jsonb':
      return 'textarea';
    default:
      return 'text';
  }
}

/** A value as the text of its form input (checkboxes use `'true'`/`'false'`). */
export function toInputText(value: unknown, type: FieldType): string {
  if (value === null || value === undefined) return type === 'boolean' ? 'false' : '';
  switch (type) {
    case 'boolean':
      return value === true ? 'true' : 'false';
    case 'text[]':
      return Array.isArray(value) ? value.map(String).join(', ') : String(value);
    case 'jsonb':
      return JSON.stringify(value, null, 2);
    default:
      return String(value);
  }
}

/** What was typed is not a value of the field's type; shown as a BAD_REQUEST before anything is sent. */
export class FieldInputError extends Error {
  override readonly name = 'FieldInputError';
  readonly code = 'BAD_REQUEST';
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${labelOf(field)}: ${message}`);
  }
}

/**
 * The JSON value for what was typed. Empty input is `null` for a nullable field, `undefined` (left out) for one the
 * database fills by default, and an empty string for a required text field, which the API then judges. Numerics stay
 * strings so no precision is lost.
 */
export function fromInputText(name: string, text: string, field: FieldSpec): unknown {
  const trimmed = text.trim();
  if (field.type === 'boolean') return text === 'true';
  if (trimmed === '') {
    if (field.nullable) return null;
    if (field.hasDefault === true) return undefined;
    if (field.type === 'text') return '';
    throw new FieldInputError(name, 'is required');
  }
  switch (field.type) {
    case 'int': {
      const n = Number(trimmed);
      if (!Number.isInteger(n)) throw new FieldInputError(name, `'${trimmed}' is not a whole number`);
      return n;
    }
    case 'numeric':
      if (!/^-?\d+(\.\d+)?$/.test(trimmed)) throw new FieldInputError(name, `'${trimmed}' is not a number`);
      return trimmed;
    case 'text[]':
      return trimmed
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s !== '');
    case 'jsonb':
      try {
        return JSON.parse(trimmed) as unknown;
      } catch {
        throw new FieldInputError(name, 'is not valid JSON');
      }
    case 'text':
      return text;
    default:
      return trimmed;
  }
}

function sameValue(a: unknown, b: unknown, type: FieldType): boolean {
  if (type === 'numeric' && a !== null && b !== null && a !== undefined && b !== undefined) {
    return Number(a) === Number(b);
  }
  return JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
}

/** The fields whose edited value differs from the row's: the body of a PATCH. */
export function changedFields(
  spec: EntitySpec,
  row: Row,
  edited: Readonly<Record<string, unknown>>,
): Record<string, unknown> {
  const patch: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(edited)) {
    const field = spec.fields[name];
    if (field === undefined || name === spec.primaryKey) continue;
    if (!sameValue(row[name], value, field.type)) patch[name] = value;
  }
  return patch;
}

/** A change-log diff as lines: `Title: "Old" → "New"`. */
export function describeDiff(diff: Readonly<Record<string, readonly [unknown, unknown]>>): string[] {
  const show = (v: unknown) => (v === null || v === undefined ? '∅' : JSON.stringify(v));
  return Object.entries(diff).map(([name, [before, after]]) => `${labelOf(name)}: ${show(before)} → ${show(after)}`);
}

/** For a new row: a UUID primary key is made here (the API needs one); other keys are left to the database. */
export function newKeyFor(spec: EntitySpec, randomUUID: () => string): Record<string, unknown> {
  return spec.fields[spec.primaryKey]?.type === 'uuid' ? { [spec.primaryKey]: randomUUID() } : {};
}

/**
 * A reference id without a known label: its start and its end, so ids that share a prefix (seeded ids often do) stay
 * apart. Short ids are shown whole.
 */
export function shortId(id: string): string {
  return id.length <= 14 ? id : `${id.slice(0, 8)}…${id.slice(-4)}`;
}

/** A reference cell (`<target>_id`): the target row's `name` or `title` when the page has it, else `shortId`. */
export function referenceText(id: string, target: Readonly<Record<string, unknown>> | undefined): string {
  const label = target?.name ?? target?.title;
  return typeof label === 'string' && label !== '' ? label : shortId(id);
}
