/**
 * `crowbar sim` against a running server: when a server URL is configured (`--url`,
 * `CROWBAR_URL` or the config file) and no store is named on the command line (`--data-dir`,
 * `--database`), the nodes are registered through `POST /api/v2/sim` and the anneal is followed
 * with the same watcher as `crowbar anneal watch`. Otherwise `crowbar sim` works on an embedded
 * data dir as before (main.ts).
 */
import type { Command } from 'commander';
import { CrowbarClient, resolveConnection } from '../client.js';
import { watchAnneal } from './anneal.js';
import { connectionFlags } from './context.js';
import { makeOutput, printJson } from './output.js';

/** The client to use for `sim`, or undefined to keep the embedded behaviour. */
export function simClient(cmd: Command): CrowbarClient | undefined {
  const opts = cmd.optsWithGlobals();
  if (opts.dataDir !== undefined || opts.database !== undefined) return undefined;
  const conn = resolveConnection(connectionFlags(opts));
  return conn.urlSource === 'default' ? undefined : new CrowbarClient(conn);
}

/** Registers the nodes through the API and (unless --no-wait) watches them converge; sets the exit code. */
export async function simViaApi(client: CrowbarClient, cmd: Command): Promise<void> {
  const opts = cmd.optsWithGlobals();
  const out = makeOutput(opts);
  const ignored = (['dev', 'concurrency', 'perNode', 'barclamps', 'runTimeout'] as const).filter((k) => opts[k] !== undefined);
  if (ignored.length) {
    const flags = ignored.map((k) => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`).join(', ');
    process.stderr.write(`crowbar: ignoring ${flags}: they configure an embedded store, and the server at ${client.url} has its own (add --data-dir to simulate on an embedded one)\n`);
  }
  const t0 = Date.now();
  if (process.stderr.isTTY && !out.json) process.stderr.write(`registering ${opts.nodes} simulated nodes at ${client.url} …\n`);
  const res = await client.post<{ deployment: string; count: number; nodes: string[] }>('/api/v2/sim', {
    nodes: opts.nodes,
    deployment: opts.deployment,
    roles: opts.roles,
    commit: opts.commit !== false,
    test_delay: opts.testDelay,
  });
  if (out.json) printJson(out, res);
  else out.write(`registered ${res.count} simulated nodes in deployment '${res.deployment}' (${((Date.now() - t0) / 1000).toFixed(1)} s)\n`);
  if (!opts.wait || opts.commit === false) return;
  process.exitCode = await watchAnneal(client, makeOutput({}), { deployment: res.deployment === 'system' ? undefined : res.deployment });
}
