/**
 * The jig registry (an extension point): jigs register by name once; a duplicate name is an
 * error at start-up. The annealer looks jigs up here by the role's effective jig name.
 */
import type { JigDefinition } from './types.js';

export class JigRegistry {
  private readonly jigs = new Map<string, JigDefinition>();

  add(...defs: JigDefinition[]): this {
    for (const d of defs) {
      if (this.jigs.has(d.name)) throw new Error(`jig '${d.name}' is registered twice`);
      this.jigs.set(d.name, d);
    }
    return this;
  }

  get(name: string): JigDefinition | undefined {
    return this.jigs.get(name);
  }

  require(name: string): JigDefinition {
    const j = this.jigs.get(name);
    if (!j) throw new Error(`no jig implementation named '${name}' (known: ${[...this.jigs.keys()].join(', ')})`);
    return j;
  }

  names(): string[] {
    return [...this.jigs.keys()];
  }
}
