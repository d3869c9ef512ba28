/** Registers every API command on the program (the global connection options come with them). */
import type { Command } from 'commander';
import { registerAnneal } from './anneal.js';
import { registerAttribs } from './attribs.js';
import { registerCatalog } from './catalog.js';
import { registerCompletion } from './completion.js';
import { addGlobalOptions } from './context.js';
import { registerDeployments } from './deployments.js';
import { registerNodeRoles } from './node-roles.js';
import { registerNodes } from './nodes.js';
import { registerUsers } from './users.js';

export { simClient, simViaApi } from './sim.js';

export function registerApiCommands(program: Command): Command {
  addGlobalOptions(program);
  registerNodes(program);
  registerDeployments(program);
  registerNodeRoles(program);
  registerCatalog(program);
  registerAttribs(program);
  registerUsers(program);
  registerAnneal(program);
  registerCompletion(program);
  return program;
}
