/**
 * The client's events: who listens to what (`on`, which returns the function that stops listening) and telling them
 * (`emit`). A throwing listener must not break the connection, so it is ignored: there is nowhere better to report it.
 */
// biome-ignore lint/suspicious/noExplicitAny: listener parameter lists are the events' own; any keeps them assignable.
type Listeners<E> = { [K in keyof E]: (...args: any[]) => void };

export interface Events<E extends Listeners<E>> {
  emit<K extends keyof E>(event: K, ...args: Parameters<E[K]>): void;
  on<K extends keyof E>(event: K, listener: E[K]): () => void;
}

export function createEvents<E extends Listeners<E>>(): Events<E> {
  const listeners = new Map<keyof E, Set<E[keyof E]>>();
  return {
    emit(event, ...args) {
      for (const listener of [...(listeners.get(event) ?? [])]) {
        try {
          listener(...args);
        } catch {
          // Ignored: see the header.
        }
      }
    },
    on(event, listener) {
      const set = listeners.get(event) ?? new Set();
      listeners.set(event, set.add(listener));
      return () => void set.delete(listener);
    },
  };
}
