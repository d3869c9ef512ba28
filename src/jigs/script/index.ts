/**
 * Public surface of the script jig: the jig itself, its factory, and the wall-file coercion
 * that other file-based jigs may share. Everything else in this folder is internal.
 */
export { createScriptJig, resolveRunnerPath, scriptJig } from './script-jig.js';
export type { ScriptJigOptions } from './script-jig.js';
export { coerceWallValue, readWallTree } from './wall.js';
export type { WallTree } from './wall.js';
