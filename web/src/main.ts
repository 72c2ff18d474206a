/**
 * The demo page: sign in as a seeded user, see the tenant's entities live, edit and create rows, read a row's change
 * log, watch the connection state. Plain DOM, no framework; every live update comes through the client SDK
 * (client/src), every read and write through the entity HTTP API. Rendering uses textContent only, never HTML
 * from data.
 */
import { createClient, type TenantcastClient } from '../../client/src/index.ts';
import type { ClientState } from '../../client/src/types.ts';
import { ApiError, EntityApi, tenantNotConfigured } from './api.ts';
import { EntityTable } from './entity-table.ts';
import { connectionError, ErrorBanners } from './errors.ts';
import {
  type Column,
  changedFields,
  columnsOf,
  describeDiff,
  editableFields,
  FieldInputError,
  formatCell,
  fromInputText,
  inputKindOf,
  labelOf,
  newKeyFor,
  referenceText,
  toInputText,
} from './fields.ts';
import {
  asChangeEvent,
  type ChangeLogEntry,
  entityGroup,
  mayWrite,
  type Row,
  type Schema,
  versionOf,
} from './schema.ts';
import { demoUsers, type Identity, identityId, Session } from './session.ts';

// ---- DOM helpers ----

type Attrs = Readonly<Record<string, string | number | boolean | undefined>>;

function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === false) continue;
    el.setAttribute(name, value === true ? '' : String(value));
  }
  el.append(...children);
  return el;
}

function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (el === null) throw new Error(`the page has no #${id}`);
  return el as T;
}

// ---- errors ----

// An error stays until dismissed, or until the action that failed succeeds (errors.ts).
const banners = new ErrorBanners();

function renderErrors(): void {
  byId('errors').replaceChildren(
    ...banners.items.map((banner) => {
      const close = h('button', { type: 'button', class: 'dismiss', 'aria-label': 'dismiss' }, '×');
      close.addEventListener('click', () => {
        banners.dismiss(banner.id);
        renderErrors();
      });
      return h('li', { 'data-code': banner.code }, h('code', {}, banner.code), ' ', banner.message, ' ', close);
    }),
  );
}

function showError(code: string, message: string, action?: string): void {
  banners.add(code, message, action);
  renderErrors();
}

function succeeded(action: string): void {
  banners.succeeded(action);
  renderErrors();
}

function report(err: unknown, action?: string): void {
  if (err instanceof ApiError || err instanceof FieldInputError) showError(err.code, err.message, action);
  else if (typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string') {
    showError(err.code, err instanceof Error ? err.message : String(err), action);
  } else showError('INTERNAL', String(err), action);
}

// ---- the signed-in view ----

interface Editor {
  readonly entity: string;
  /** Undefined while creating. */
  key: string | undefined;
  base: Row;
}

const STORAGE_KEY = 'tenantcast-demo-identity';

/** The page was signed out while it waited: nothing to report (the next user's page must not show it). */
class SignedOut extends Error {}
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

class SignedIn {
  readonly #session: Session;
  readonly #api: EntityApi;
  readonly #tables = new Map<string, EntityTable>();
  /** Entities a write of which was refused with FORBIDDEN: no write controls for them any more. */
  readonly #refused = new Set<string>();
  readonly #stops: (() => void)[] = [];
  #client: TenantcastClient | undefined;
  #editor: Editor | undefined;
  #closed = false;

  constructor(identity: Identity) {
    this.#session = new Session({ identity });
    this.#api = new EntityApi({ getToken: async (fresh) => (await this.#session.token(fresh)).token });
  }

  async start(): Promise<void> {
    const { tenantId, userId, roles } = this.#session.identity;
    byId('who').textContent = `${userId} @ ${tenantId} (${roles.join(', ')})`;
    const schema: Schema = await this.#untilAvailable(() => this.#api.schema());
    if (this.#closed) return;
    const names = Object.keys(schema.entities).sort((a, b) => (a === 'task' ? -1 : b === 'task' ? 1 : a < b ? -1 : 1));
    const sections = byId('entities');
    sections.replaceChildren();
    if (names.length === 0) sections.append(h('p', { class: 'empty' }, 'This user may not read any entity.'));
    for (const name of names) {
      const spec = schema.entities[name];
      if (spec === undefined) continue;
      this.#tables.set(name, new EntityTable(spec));
      sections.append(this.#section(name));
    }

    const client = createClient({
      url: webSocketUrl(),
      getToken: (request) => this.#session.token(request?.fresh),
      authCheckUrl: `${location.origin}/v1/schema`,
      // A local stack restarting takes seconds: retry often enough to be back within a few seconds of it.
      backoff: { baseMs: 500, maxMs: 4000 },
    });
    this.#client = client;
    this.#stops.push(
      client.on('state', (state, previous) => {
        renderState(state);
        // Connected: what went wrong with the connection (auth, refused frames) is over.
        if (state === 'connected') succeeded('connection');
        // Back after a drop: load the tables again, so the page shows what the API has now (whatever happened
        // meanwhile, even a stack restarted without its data); later changes come through the feed by version.
        if (state === 'connected' && previous === 'reconnecting') {
          for (const name of this.#tables.keys()) void this.#reload(name);
        }
      }),
      // Connection errors stay until the connection works again (or the user dismisses them).
      client.on('auth', (error) => showError(error.code, `${error.message}: sign out and in again`, 'connection')),
      client.on('error', (error) => {
        const shown = connectionError(error, this.#session.unavailable);
        showError(shown.code, shown.message, 'connection');
      }),
      client.on('reset', ({ group }) => {
        const entity = group.startsWith('entity:') ? group.slice('entity:'.length) : undefined;
        if (entity !== undefined && this.#tables.has(entity)) void this.#reload(entity);
      }),
    );
    renderState(client.state);
    const loads = names.map(async (name) => {
      const subscription = client.subscribe(entityGroup(name), (message) => this.#onChange(name, message.data));
      this.#stops.push(subscription);
      // Load the list once the subscription stands, so no change falls between the two; if the connection is slow,
      // show the list anyway and load it again when the subscription is acknowledged.
      const ready = subscription.ready.then(
        () => true,
        () => false, // reported through the 'error' event
      );
      const inTime = await Promise.race([ready, sleep(3000).then(() => undefined)]);
      await this.#reload(name);
      // A subscription let go (the view closed) resolves its `ready` too: nothing to load then.
      if (inTime === undefined && (await ready) && !this.#closed) await this.#reload(name);
    });
    void client.connect();
    await Promise.all(loads);
  }

  close(): void {
    this.#closed = true;
    for (const stop of this.#stops.splice(0)) stop();
    this.#client?.close();
    renderState('disconnected');
  }

  #section(name: string): HTMLElement {
    const table = this.#tables.get(name);
    if (table === undefined) throw new Error(`no table ${name}`);
    const columns = columnsOf(table.spec);
    return h(
      'section',
      { class: 'entity', 'data-entity': name },
      h('header', {}, h('h2', {}, `${labelOf(name)}s `, h('span', { class: 'count' }, '…')), this.#newButton(name)),
      h(
        'table',
        {},
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            ...columns.map((c) => h('th', { 'data-field': c.name }, c.label)),
            h(
              'th',
              { class: 'version', title: "The row's version: +1 on every write; a save names it (If-Match)" },
              'version',
            ),
          ),
        ),
        h('tbody', {}, h('tr', {}, h('td', { colspan: columns.length + 1, class: 'empty' }, 'Loading…'))),
      ),
    );
  }

  #writable(name: string): boolean {
    const table = this.#tables.get(name);
    return table !== undefined && mayWrite(table.spec, this.#refused.has(name));
  }

  /** "New <entity>" for a user who may write it; for one who may not, a note saying so instead of a dead button. */
  #newButton(name: string): HTMLElement {
    if (!this.#writable(name)) {
      return h('span', { class: 'read-only', 'data-read-only': name }, 'read only: your roles cannot change these');
    }
    const add = h(
      'button',
      { type: 'button', class: 'new', 'data-action': 'new' },
      `New ${labelOf(name).toLowerCase()}`,
    );
    add.addEventListener('click', () => this.#openEditor(name, undefined));
    return add;
  }

  /** A write of `name` was refused with FORBIDDEN: hide its write controls from now on. */
  #forbidden(name: string): void {
    this.#refused.add(name);
    document
      .querySelector(`section.entity[data-entity="${CSS.escape(name)}"] header .new`)
      ?.replaceWith(this.#newButton(name));
  }

  /** `load()`, again and again while the stack is starting (503) or unreachable; the badge says `connecting`. */
  /**
   * `load`, again after a backoff while the stack is starting or unreachable, or while the tenant is not configured
   * yet (being onboarded: that error stays shown until it is).
   */
  async #untilAvailable<T>(load: () => Promise<T>): Promise<T> {
    for (let waitMs = 500; ; waitMs = Math.min(waitMs * 2, 4000)) {
      try {
        const loaded = await load();
        if (this.#closed) throw new SignedOut();
        succeeded('load:schema');
        return loaded;
      } catch (err) {
        const starting = err instanceof ApiError && (err.status === 503 || err.code === 'NETWORK');
        if (this.#closed) throw new SignedOut();
        if (!starting && !tenantNotConfigured(err)) throw err;
        if (!starting) report(err, 'load:schema');
        renderState('connecting');
        await sleep(waitMs);
        if (this.#closed) throw new SignedOut();
      }
    }
  }

  async #reload(name: string): Promise<void> {
    try {
      const rows = await this.#api.list(name);
      this.#tables.get(name)?.load(rows);
      this.#renderAll();
      succeeded(`load:${name}`);
    } catch (err) {
      // The tenant is gone (a local stack restarted without its data directory): none of its rows is there now.
      if (tenantNotConfigured(err)) {
        this.#tables.get(name)?.clear();
        this.#renderAll();
      }
      report(err, `load:${name}`);
    }
  }

  #onChange(name: string, data: unknown): void {
    const change = asChangeEvent(data);
    const table = this.#tables.get(name);
    if (change === undefined || table === undefined || !table.apply(change)) return;
    if (change.rowOmitted === true) {
      // Too big to travel in the message: read it (docs/entities.md, "Live feed").
      this.#api
        .get(name, String(change.key))
        .then((row) => table.upsert(row) && this.#renderAll(new Set([`${name}/${String(change.key)}`])))
        .catch(report);
    }
    this.#renderAll(new Set([`${name}/${String(change.key)}`]));
    const editor = this.#editor;
    if (editor !== undefined && editor.entity === name && editor.key === String(change.key)) {
      const who = change.changedBy === '' ? 'someone' : change.changedBy;
      editorNotice(
        change.op === 'delete'
          ? `${who} deleted this ${name}.`
          : `${who} changed this ${name} (now version ${change.version}).`,
        'info',
      );
      void this.#loadChanges(name, editor.key);
    }
  }

  #cell(column: Column, value: unknown): HTMLElement {
    if (column.field.type === 'uuid' && column.name.endsWith('_id') && typeof value === 'string') {
      // The target's name when the page loaded its table (the user may read it), else enough of the id to tell apart.
      const target = this.#tables.get(column.name.slice(0, -3))?.get(value);
      return h('td', { 'data-field': column.name, title: value }, referenceText(value, target));
    }
    return h('td', { 'data-field': column.name }, formatCell(value, column.field.type));
  }

  #renderAll(flash: ReadonlySet<string> = new Set()): void {
    for (const [name, table] of this.#tables) {
      const section = document.querySelector<HTMLElement>(`section.entity[data-entity="${CSS.escape(name)}"]`);
      const body = section?.querySelector('tbody');
      if (!section || !body) continue;
      const columns = columnsOf(table.spec);
      const rows = table.rows();
      const count = section.querySelector('.count');
      if (count) count.textContent = `(${rows.length})`;
      const selected = this.#editor?.entity === name ? this.#editor.key : undefined;
      body.replaceChildren(
        ...rows.map((row) => {
          const key = table.keyOf(row);
          const tr = h(
            'tr',
            {
              'data-key': key,
              tabindex: 0,
              class: [key === selected && 'selected', flash.has(`${name}/${key}`) && 'flash'].filter(Boolean).join(' '),
            },
            ...columns.map((c) => this.#cell(c, row[c.name])),
            h('td', { class: 'version' }, String(versionOf(row))),
          );
          const open = () => this.#openEditor(name, key);
          tr.addEventListener('click', open);
          tr.addEventListener('keydown', (e) => {
            if (e.key === 'Enter') open();
          });
          return tr;
        }),
      );
      if (rows.length === 0)
        body.append(h('tr', {}, h('td', { colspan: columns.length + 1, class: 'empty' }, 'No rows')));
    }
  }

  #openEditor(entity: string, key: string | undefined): void {
    const table = this.#tables.get(entity);
    if (table === undefined) return;
    const base = key === undefined ? {} : table.get(key);
    const writable = this.#writable(entity);
    if (base === undefined || (key === undefined && !writable)) return;
    this.#editor = { entity, key, base };
    const panel = byId('detail');
    panel.hidden = false;
    const title = key === undefined ? `New ${entity}` : writable ? `Edit ${entity}` : `View ${entity}`;
    const fields = editableFields(table.spec).map((column) =>
      fieldInput(column, base[column.name], this.#unreadableTarget(column)),
    );
    const save = h('button', { type: 'submit', 'data-action': 'save' }, key === undefined ? 'Create' : 'Save');
    const cancel = h('button', { type: 'button', 'data-action': 'close' }, 'Close');
    const remove = h('button', { type: 'button', 'data-action': 'delete', class: 'danger' }, 'Delete');
    remove.addEventListener('click', () => this.#askToDelete());
    const form = h(
      'form',
      // Checked here (typed BAD_REQUEST errors), not by the browser's own validation bubbles.
      { id: 'editor', 'data-entity': entity, 'data-key': key, novalidate: true },
      h('fieldset', { disabled: !writable }, ...fields),
      h(
        'div',
        { class: 'actions' },
        ...(writable ? [save] : []),
        ...(writable && key !== undefined ? [remove] : []),
        cancel,
      ),
    );
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      save.disabled = true;
      void this.#save(form).finally(() => {
        save.disabled = false;
      });
    });
    cancel.addEventListener('click', () => this.#closeEditor());
    panel.replaceChildren(
      h('h2', {}, title, key === undefined ? '' : h('small', { class: 'key' }, ` ${key}`)),
      h('div', { id: 'editor-notice', role: 'status' }),
      form,
      ...(key === undefined ? [] : [h('h3', {}, 'Change log'), h('ol', { id: 'change-log', reversed: true })]),
    );
    this.#renderAll();
    if (!writable) editorNotice(`Read only: your roles cannot change ${entity}s.`, 'info');
    if (key !== undefined) void this.#loadChanges(entity, key);
  }

  #closeEditor(): void {
    this.#editor = undefined;
    byId('detail').hidden = true;
    this.#renderAll();
  }

  async #save(form: HTMLFormElement): Promise<void> {
    const editor = this.#editor;
    const table = editor === undefined ? undefined : this.#tables.get(editor.entity);
    if (editor === undefined || table === undefined) return;
    const action = `save:${editor.entity}/${editor.key ?? 'new'}`;
    let values: Record<string, unknown>;
    try {
      values = readForm(form, editableFields(table.spec));
    } catch (err) {
      report(err, action);
      return;
    }
    try {
      if (editor.key === undefined) {
        const body: Record<string, unknown> = { ...newKeyFor(table.spec, () => crypto.randomUUID()) };
        for (const [name, value] of Object.entries(values)) {
          if (value !== null && !(value === '' && table.spec.fields[name]?.nullable)) body[name] = value;
        }
        const row = await this.#api.create(editor.entity, body);
        succeeded(action);
        table.upsert(row);
        this.#openEditor(editor.entity, table.keyOf(row));
        editorNotice(`Created (version ${versionOf(row)}).`, 'ok');
        return;
      }
      const patch = changedFields(table.spec, editor.base, values);
      if (Object.keys(patch).length === 0) {
        editorNotice('Nothing to save: no field changed.', 'info');
        return;
      }
      const row = await this.#api.update(editor.entity, editor.key, patch, versionOf(editor.base));
      succeeded(action);
      table.upsert(row);
      editor.base = row;
      this.#renderAll();
      editorNotice(`Saved (version ${versionOf(row)}).`, 'ok');
      void this.#loadChanges(editor.entity, editor.key);
    } catch (err) {
      if (err instanceof ApiError && err.code === 'CONFLICT' && editor.key !== undefined) {
        this.#showConflict(editor, err);
        return;
      }
      report(err, action);
      if (err instanceof ApiError && err.code === 'FORBIDDEN') {
        // The API did not say (older schema answer) or the rules changed: no write controls for this entity now.
        this.#forbidden(editor.entity);
        if (editor.key === undefined) this.#closeEditor();
        else this.#openEditor(editor.entity, editor.key);
      }
    }
  }

  /**
   * The entity a reference field (`campaign_id`, a uuid, as the table's reference cells read it) names when the user
   * may not read it: the API refuses a reference to a row its writer may not read (docs/entities.md, "Access rules"),
   * so the form does not offer to set one.
   */
  #unreadableTarget(column: Column): string | undefined {
    if (column.field.type !== 'uuid' || !column.name.endsWith('_id')) return undefined;
    const target = column.name.slice(0, -3);
    return this.#tables.has(target) ? undefined : target;
  }

  /** Deleting takes a second click on the notice's button, so one stray click loses nothing. */
  #askToDelete(): void {
    const editor = this.#editor;
    if (editor?.key === undefined) return;
    const confirm = h(
      'button',
      { type: 'button', 'data-action': 'confirm-delete', class: 'danger' },
      'Delete for good',
    );
    confirm.addEventListener('click', () => {
      // One DELETE at a time: the editor's Save and Delete wait for its answer too (found by a review: a second
      // Delete sent while the first was in flight got a 404 for a delete that had succeeded).
      const buttons = [
        confirm,
        ...document.querySelectorAll<HTMLButtonElement>('#editor [data-action="delete"], #editor [data-action="save"]'),
      ];
      for (const button of buttons) button.disabled = true;
      void this.#delete(editor).finally(() => {
        for (const button of buttons) button.disabled = false;
      });
    });
    editorNotice(`Delete this ${editor.entity}? Everyone who sees it loses it at once. `, 'conflict', confirm);
  }

  /**
   * DELETE at the version the editor shows: a stale one is a conflict, as for a save; a row already gone (someone
   * else deleted it) is as good as deleted; a 403 hides the entity's write controls, as for a save.
   */
  async #delete(editor: Editor): Promise<void> {
    const key = editor.key;
    const table = this.#tables.get(editor.entity);
    if (key === undefined || table === undefined) return;
    const action = `delete:${editor.entity}/${key}`;
    try {
      await this.#api.remove(editor.entity, key, versionOf(editor.base)).catch((err: unknown) => {
        if (!(err instanceof ApiError && err.code === 'NOT_FOUND')) throw err;
      });
      succeeded(action);
      // Gone here at once; the live feed's delete (the same version) then changes nothing.
      table.remove(key, versionOf(editor.base) + 1);
      if (this.#editor === editor) this.#closeEditor();
      else this.#renderAll();
    } catch (err) {
      if (err instanceof ApiError && err.code === 'CONFLICT') {
        this.#showConflict(editor, err, 'delete');
        return;
      }
      report(err, action);
      if (err instanceof ApiError && err.code === 'FORBIDDEN') {
        this.#forbidden(editor.entity);
        if (this.#editor === editor) this.#openEditor(editor.entity, key);
      }
    }
  }

  /**
   * In the editor it concerns (else as an error banner: the user moved on to another row before the answer came,
   * whose editor a review found told of this one's conflict).
   */
  #showConflict(editor: Editor, err: ApiError, what: 'save' | 'delete' = 'save'): void {
    const key = editor.key;
    if (key === undefined) return;
    if (this.#editor !== editor) {
      report(err, `${what}:${editor.entity}/${key}`);
      return;
    }
    const latest = h('button', { type: 'button', 'data-action': 'load-latest' }, 'Load the latest version');
    latest.addEventListener('click', () => {
      this.#api.get(editor.entity, key).then((row) => {
        this.#tables.get(editor.entity)?.upsert(row);
        this.#openEditor(editor.entity, key);
        editorNotice(
          `Loaded version ${versionOf(row)}. ${what === 'save' ? 'Apply your edit again and save.' : 'Delete it again if you still mean to.'}`,
          'info',
        );
      }, report);
    });
    editorNotice(
      what === 'save'
        ? `Someone saved this ${editor.entity} before you (CONFLICT: ${err.message}). Your edits are still in the form. `
        : `Someone changed this ${editor.entity} since you loaded it (CONFLICT: ${err.message}): it was not deleted. `,
      'conflict',
      latest,
    );
  }

  async #loadChanges(entity: string, key: string): Promise<void> {
    let items: ChangeLogEntry[] = [];
    const known = this.#tables.get(entity)?.get(key);
    try {
      // A row at version 0 was never written through the API (seed data): it has no change log to ask for (asked, the
      // API's 404 showed as an error in the browser's console; found by a newcomer's pass).
      if (known === undefined || versionOf(known) > 0) items = await this.#api.changes(entity, key);
    } catch (err) {
      // A row never written through the API (seed data) has no change log yet: the API says NOT_FOUND.
      if (err instanceof ApiError && err.code === 'NOT_FOUND' && known !== undefined) {
        items = [];
      } else {
        report(err);
        return;
      }
    }
    const list = document.getElementById('change-log');
    if (list === null || this.#editor?.entity !== entity || this.#editor.key !== key) return;
    list.replaceChildren(
      ...[...items]
        .sort((a, b) => b.version - a.version)
        .map((item) =>
          h(
            'li',
            { value: item.version, 'data-version': item.version },
            h('strong', {}, `v${item.version} ${item.op}`),
            ` by ${item.changedBy}, ${formatCell(item.changedAt, 'timestamptz')}`,
            h('ul', {}, ...describeDiff(item.diff).map((line) => h('li', {}, line))),
          ),
        ),
    );
    if (items.length === 0) list.append(h('li', { class: 'empty' }, 'No changes recorded yet (seeded row).'));
  }
}

/** A form field; `lockedTarget`: a reference to an entity the user may not read, shown read-only (`#unreadableTarget`). */
function fieldInput(column: Column, value: unknown, lockedTarget?: string): HTMLElement {
  const kind = inputKindOf(column.field.type);
  const id = `field-${column.name}`;
  const text = toInputText(value, column.field.type);
  let input: HTMLInputElement | HTMLTextAreaElement;
  if (kind === 'textarea') {
    input = h('textarea', { id, name: column.name, rows: 3 });
    input.value = text;
  } else if (kind === 'checkbox') {
    input = h('input', { id, name: column.name, type: 'checkbox' });
    input.checked = text === 'true';
  } else {
    input = h('input', {
      id,
      name: column.name,
      type: kind,
      ...(column.field.type === 'numeric' && { step: 'any' }),
      ...(column.field.type === 'text[]' && { placeholder: 'comma, separated' }),
      ...(column.field.type === 'timestamptz' && { placeholder: '2025-03-01T09:00:00Z' }),
    });
    input.value = text;
  }
  if (lockedTarget !== undefined) input.readOnly = true;
  const required = column.field.nullable || column.field.hasDefault === true ? '' : ' *';
  return h(
    'label',
    { for: id, 'data-field': column.name },
    h('span', {}, `${column.label}${required}`),
    input,
    h('small', {}, lockedTarget === undefined ? column.field.type : `you may not read ${lockedTarget}s to pick one`),
  );
}

function readForm(form: HTMLFormElement, columns: readonly Column[]): Record<string, unknown> {
  const values: Record<string, unknown> = {};
  for (const column of columns) {
    const input = form.elements.namedItem(column.name);
    if (!(input instanceof HTMLInputElement || input instanceof HTMLTextAreaElement)) continue;
    const text = input instanceof HTMLInputElement && input.type === 'checkbox' ? String(input.checked) : input.value;
    const value = fromInputText(column.name, text, column.field);
    if (value !== undefined) values[column.name] = value;
  }
  return values;
}

function editorNotice(text: string, kind: 'ok' | 'info' | 'conflict', ...extra: Node[]): void {
  const notice = document.getElementById('editor-notice');
  if (notice === null) return;
  notice.className = kind;
  notice.replaceChildren(text, ...extra);
}

function renderState(state: ClientState): void {
  const badge = byId('connection');
  badge.dataset.state = state;
  badge.textContent = state;
}

function webSocketUrl(): string {
  return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`;
}

// ---- sign-in ----

let current: SignedIn | undefined;

function signIn(identity: Identity): void {
  sessionStorage.setItem(STORAGE_KEY, JSON.stringify(identity));
  byId('sign-in').hidden = true;
  byId('app').hidden = false;
  byId('sign-out').hidden = false;
  const app = new SignedIn(identity);
  current = app;
  app.start().catch((err: unknown) => {
    if (!(err instanceof SignedOut) && current === app) report(err);
  });
}

function signOut(): void {
  current?.close();
  current = undefined;
  sessionStorage.removeItem(STORAGE_KEY);
  byId('app').hidden = true;
  byId('detail').hidden = true;
  byId('sign-out').hidden = true;
  byId('sign-in').hidden = false;
  byId('entities').replaceChildren();
  byId('who').textContent = '';
  banners.clear();
  renderErrors();
}

function storedIdentity(): Identity | undefined {
  try {
    const parsed = JSON.parse(sessionStorage.getItem(STORAGE_KEY) ?? 'null') as Partial<Identity> | null;
    if (typeof parsed?.tenantId === 'string' && typeof parsed.userId === 'string' && Array.isArray(parsed.roles)) {
      return { tenantId: parsed.tenantId, userId: parsed.userId, roles: parsed.roles.map(String) };
    }
  } catch {
    // not signed in
  }
  return undefined;
}

function setUp(): void {
  const users = byId('users');
  users.replaceChildren(
    ...demoUsers.map((user) => {
      const button = h(
        'button',
        { type: 'button', 'data-identity': identityId(user) },
        h('strong', {}, user.userId),
        h('span', {}, `${user.tenantId} · ${user.roles.join(', ')}`),
        h('small', {}, user.note),
      );
      button.addEventListener('click', () => signIn(user));
      return h('li', {}, button);
    }),
  );
  const custom = byId<HTMLFormElement>('custom-sign-in');
  custom.addEventListener('submit', (e) => {
    e.preventDefault();
    const read = (name: string) => {
      const input = custom.elements.namedItem(name);
      return input instanceof HTMLInputElement ? input.value.trim() : '';
    };
    const roles = read('roles')
      .split(',')
      .map((r) => r.trim())
      .filter((r) => r !== '');
    if (read('tenantId') === '' || read('userId') === '') {
      showError('BAD_REQUEST', 'tenant and user are required');
      return;
    }
    signIn({ tenantId: read('tenantId'), userId: read('userId'), roles });
  });
  byId('sign-out').addEventListener('click', signOut);
  renderState('disconnected');
  const stored = storedIdentity();
  if (stored !== undefined) signIn(stored);
}

setUp();
