/**
 * Public surface of the ansible jig: the jig, its factory and where its callback plugin is.
 * Everything else in this folder (run files, outcome reading, callback/crowbar_wall.py) is internal.
 */
export { ansibleJig, createAnsibleJig, resolveCallbackDir } from './ansible-jig.js';
export type { AnsibleJigOptions } from './ansible-jig.js';
