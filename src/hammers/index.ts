/**
 * The hammer registry: which hammer factories (`local`, `sim`, later `ssh`, `ipmi`) this server
 * knows, by name. It builds nothing itself; the composition root adds the factories.
 */
import { ConflictError, NotFoundError } from '../domain/errors.js';
import type { HammerFactory } from './types.js';

export class HammerRegistry {
  readonly #factories = new Map<string, HammerFactory>();

  /** Registers a factory; a second factory with the same name is an error. */
  add(factory: HammerFactory): this {
    if (this.#factories.has(factory.name)) {
      throw new ConflictError(`hammer '${factory.name}' is already registered`, { hammer: factory.name });
    }
    this.#factories.set(factory.name, factory);
    return this;
  }

  /** The factory called `name`; throws NotFoundError listing the known hammers when missing. */
  get(name: string): HammerFactory {
    const factory = this.#factories.get(name);
    if (!factory) {
      const known = this.names();
      throw new NotFoundError(
        'hammer',
        name,
        known.length > 0 ? `known hammers: ${known.join(', ')}` : 'no hammers are registered',
      );
    }
    return factory;
  }

  has(name: string): boolean {
    return this.#factories.has(name);
  }

  /** Names of the registered hammers, sorted. */
  names(): string[] {
    return [...this.#factories.keys()].sort();
  }
}
