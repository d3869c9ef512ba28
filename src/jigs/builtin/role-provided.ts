/**
 * The role-provided jig: the role itself does the work, through a TypeScript handler registered
 * under the role's name. Used by service roles and by `test-async`.
 */
import { defineJig, JigFailure, type JigContext, type JigResult } from '../types.js';

export type RoleHandler = (ctx: JigContext) => Promise<JigResult>;

export class RoleHandlerRegistry {
  private readonly handlers = new Map<string, RoleHandler>();
  add(roleName: string, handler: RoleHandler): this {
    if (this.handlers.has(roleName)) throw new Error(`role handler for '${roleName}' is registered twice`);
    this.handlers.set(roleName, handler);
    return this;
  }
  get(roleName: string): RoleHandler | undefined {
    return this.handlers.get(roleName);
  }
}

export function roleProvidedJig(handlers: RoleHandlerRegistry) {
  return defineJig({
    name: 'role-provided',
    description: 'the role provides its own implementation (a registered handler)',
    stage: 'full',
    timeoutSeconds: 600,
    rerunAfterCrash: true,
    async run(ctx) {
      const h = handlers.get(ctx.role.name);
      if (!h) throw new JigFailure(`role '${ctx.role.name}' uses the role-provided jig but no handler is registered for it`);
      return h(ctx);
    },
  });
}
