/**
 * The hammer contract: how the server reaches one node. `run` executes an argv (never a shell
 * string built from data), `xfer` copies files, `power` drives power actions. Implementations:
 * local (the admin host), sim (a per-node sandbox directory), later ssh and ipmi.
 */

export interface RunOptions {
  /** bytes fed to the command's stdin */
  stdin?: string | Buffer;
  /** extra environment variables */
  env?: Record<string, string>;
  /** working directory on the node */
  cwd?: string;
  /** aborts the command (kills it) */
  signal?: AbortSignal;
  /** called with each chunk of output as it arrives */
  onOutput?: (stream: 'stdout' | 'stderr', chunk: string) => void;
}

export interface RunResult {
  stdout: string;
  stderr: string;
  /** exit code; null when killed by a signal */
  code: number | null;
  signal?: string | null;
}

export type PowerAction = 'status' | 'on' | 'off' | 'cycle' | 'reset' | 'halt' | 'reboot' | 'identify' | 'pxeboot';

export interface HammerActions {
  power: PowerAction[];
  xfer: Array<'copy_to' | 'copy_from'>;
  run: Array<'run'>;
  boot?: Array<'pxe' | 'disk'>;
}

export interface NodeHammer {
  /** available-hammer name: `local`, `sim`, `ssh`, `ipmi` */
  readonly name: string;
  readonly actions: HammerActions;
  /** runs argv[0] with arguments argv[1..] on the node */
  run(argv: string[], opts?: RunOptions): Promise<RunResult>;
  /** copies a local file or directory (recursively) to `remotePath` on the node */
  copyTo(localPath: string, remotePath: string): Promise<void>;
  /** copies a node file or directory (recursively) to `localPath` */
  copyFrom(remotePath: string, localPath: string): Promise<void>;
  /** performs a power action; returns a short human result */
  power(action: PowerAction): Promise<string>;
  /** releases connections held for this node */
  close?(): Promise<void>;
  /**
   * For jigs that bring their own SSH client (ansible): how to log in to the node, after
   * checking now, through this hammer, that it answers with its pinned host key. Only hammers
   * that reach the node over SSH have it.
   */
  sshAccess?(): Promise<SshAccess>;
  /**
   * Forgets the node's pinned host key (after a legitimate reinstall), so the next connection
   * pins the key it is offered. Only hammers that pin keys (ssh) have it.
   */
  forgetHostKey?(): Promise<{ hostPort: string; fingerprint: string | null }>;
}

/** What an external SSH client needs to reach a node the way its `ssh` hammer does. */
export interface SshAccess {
  host: string;
  port: number;
  username: string;
  /** path of the private key file (OpenSSH format, mode 0600) */
  identityFile: string;
  /** the pinned host key as an OpenSSH known_hosts line: `host <type> <base64>` (`[host]:port …` off port 22) */
  knownHostsLine: string;
}

/** What a hammer factory knows about the node it is built for. */
export interface HammerTarget {
  nodeId: number;
  nodeName: string;
  /** address to reach the node (ssh), from the node's admin address or hints */
  address?: string;
  username: string;
  endpoint?: string | null;
  authenticator?: string | null;
}

export interface HammerFactory {
  readonly name: string;
  create(target: HammerTarget): NodeHammer;
}

/**
 * The node could not be reached: the connection could not be made or was lost. The annealer
 * marks the node not alive when a run fails with this anywhere in its error's cause chain
 * (a refused login or a changed host key is not this: the node answered).
 */
export class TransportError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TransportError';
  }
}

/** True when `err` or any error in its cause chain is a {@link TransportError}. */
export function isTransportFailure(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 10; e = e.cause, depth++) {
    if (e instanceof TransportError) return true;
  }
  return false;
}
