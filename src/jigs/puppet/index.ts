/**
 * Public surface of the puppet-sa jig: the jig, its factory, and how inputs become Hiera data
 * and facts. Everything else in this folder is internal.
 */
export { DEFAULT_PUPPET_COMMAND, ENTRY_MANIFESTS, createPuppetJig, puppetJig } from './puppet-jig.js';
export type { PuppetJigOptions } from './puppet-jig.js';
export { CORE_FACT_NAMES, ROLE_DIR_KEY, WALL_FILE_KEY, escapeHiera, puppetInputs } from './inputs.js';
export type { PuppetInputs, RunPaths } from './inputs.js';
