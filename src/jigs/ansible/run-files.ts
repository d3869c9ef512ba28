/**
 * The files one ansible jig run hands to `ansible-playbook`: ansible.cfg, the one-host
 * inventory, the extra-vars file and (for a bare role) the playbook. Pure text generation; every
 * value from outside (inputs, paths, host names) is written so Ansible reads it verbatim: YAML
 * strings tagged `!unsafe` (never templated), cfg values escaped or refused.
 */
import type { Json, JsonObject } from '../../domain/json.js';
import { shellQuote } from '../../hammers/ssh.js';

/** `ssh` is the node's access; `local` runs on the admin host itself (`ansible_connection=local`). */
export type AnsibleTarget =
  | { kind: 'ssh'; host: string; port: number; username: string; identityFile: string; knownHostsFile: string }
  | { kind: 'local' };

export interface CfgSpec {
  /** `<sourcePath>/ansible/roles` */
  rolesPath: string;
  /** directory of crowbar_wall.py */
  callbackDir: string;
  /** ansible's local temp dir (`local_tmp`) */
  localTmp: string;
  /** ssh ControlMaster sockets; short (a socket path has ~100 bytes) */
  controlPathDir: string;
  /** the run's known_hosts file (ssh only) */
  knownHostsFile?: string;
  /** ssh ConnectTimeout */
  connectTimeoutSeconds: number;
  /** first line comment */
  header: string;
}

/**
 * Key exchange: curve25519 first. OpenSSH 9's default (sntrup761x25519) costs the client ~10×
 * the CPU per connection (see the sshd test-node recipe); the rest is OpenSSH's usual list.
 */
const KEX = [
  'curve25519-sha256',
  'curve25519-sha256@libssh.org',
  'ecdh-sha2-nistp256',
  'ecdh-sha2-nistp384',
  'ecdh-sha2-nistp521',
  'diffie-hellman-group16-sha512',
  'diffie-hellman-group18-sha512',
  'diffie-hellman-group14-sha256',
].join(',');

/**
 * ansible.cfg for one run. Nothing else configures Ansible: `ANSIBLE_CONFIG` points here and the
 * caller drops `ANSIBLE_*` from the environment. Host keys are checked against the run's
 * known_hosts only (`-F /dev/null` skips the user's and system ssh_config); one master
 * connection (ControlPersist) carries every task, and the jig closes it at the end.
 */
export function ansibleCfg(spec: CfgSpec): string {
  const sshArgs = [
    '-F /dev/null',
    '-o ControlMaster=auto',
    '-o ControlPersist=30s',
    `-o KexAlgorithms=${KEX}`,
    `-o UserKnownHostsFile=${shellQuote(spec.knownHostsFile ?? '/dev/null')}`,
    '-o GlobalKnownHostsFile=/dev/null',
    '-o StrictHostKeyChecking=yes',
    '-o UpdateHostKeys=no',
    '-o IdentitiesOnly=yes',
    '-o BatchMode=yes',
    '-o ServerAliveInterval=15',
    '-o ServerAliveCountMax=3',
  ].join(' ');
  return [
    `# ${spec.header.replace(/[\r\n]+/g, ' ')}`,
    '[defaults]',
    `roles_path = ${cfgValue(spec.rolesPath, 'roles path', true)}`,
    `callback_plugins = ${cfgValue(spec.callbackDir, 'callback plugin directory', true)}`,
    'callbacks_enabled = crowbar_wall',
    'stdout_callback = default',
    'forks = 1',
    'host_key_checking = True',
    'interpreter_python = auto_silent',
    `timeout = ${spec.connectTimeoutSeconds}`,
    'nocolor = True',
    'retry_files_enabled = False',
    `local_tmp = ${cfgValue(spec.localTmp, 'temp dir', false)}`,
    '',
    '[inventory]',
    'enable_plugins = yaml',
    '',
    '[ssh_connection]',
    'pipelining = True',
    `ssh_args = ${cfgValue(sshArgs, 'ssh arguments', false)}`,
    `control_path_dir = ${cfgValue(spec.controlPathDir, 'control path dir', true)}`,
    '',
  ].join('\n');
}

/**
 * A value for ansible.cfg (Python configparser): `%` doubled (interpolation), and refused when
 * configparser or Ansible would read it differently: line breaks, a ` ;` (inline comment),
 * surrounding blanks, and for path lists (`pathList`) a `:` (the list separator).
 */
export function cfgValue(value: string, what: string, pathList: boolean): string {
  const bad =
    /[\r\n\0]/.test(value) || /\s;/.test(value) || value.trim() !== value || (pathList && value.includes(':'));
  if (bad) throw new Error(`the ${what} '${value}' cannot be written into ansible.cfg`);
  return value.replace(/%/g, '%%');
}

/**
 * The one-host YAML inventory. `python` is the interpreter command on an ssh node: it carries
 * the run tag into the environment of every module (so an abort can find them on the node).
 */
export function inventoryYaml(hostName: string, target: AnsibleTarget, python?: string): string {
  const vars: JsonObject =
    target.kind === 'local'
      ? { ansible_connection: 'local' }
      : {
          ansible_connection: 'ssh',
          ansible_host: target.host,
          ansible_port: target.port,
          ansible_user: target.username,
          ansible_ssh_private_key_file: target.identityFile,
          ...(python ? { ansible_python_interpreter: python } : {}),
        };
  return `${unsafeYaml({ all: { hosts: { [hostName]: vars } } })}\n`;
}

/** The playbook for a bare role: `hosts: all`, the role, facts (min subset) as upstream roles expect. */
export function rolePlaybookYaml(role: string, nodeName: string): string {
  const play = {
    name: `crowbar role ${role} on ${nodeName}`,
    hosts: 'all',
    gather_facts: true,
    gather_subset: ['min'],
    roles: [role],
  };
  // plain JSON: the role name must stay a role reference, and the play name is only text
  return `${JSON.stringify([play], null, 2)}\n`;
}

/**
 * `value` as YAML (flow style) where every string is `!unsafe`: Ansible uses it as it is and
 * never evaluates `{{ … }}` or `{% … %}` in it. Numbers keep a form PyYAML (YAML 1.1) reads as
 * a number; characters YAML may not carry raw are escaped.
 */
export function unsafeYaml(value: Json): string {
  if (value === null) return 'null';
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (typeof value === 'number') return yamlNumber(value);
  if (typeof value === 'string') return `!unsafe ${yamlString(value)}`;
  if (Array.isArray(value)) return `[${value.map(unsafeYaml).join(', ')}]`;
  return `{${Object.entries(value)
    .map(([k, v]) => `${yamlString(k)}: ${unsafeYaml(v)}`)
    .join(', ')}}`;
}

/** A double-quoted YAML scalar: JSON's escapes (a subset of YAML's) plus the code points YAML bans raw. */
function yamlString(s: string): string {
  return JSON.stringify(s).replace(
    /[\u007f-\u0084\u0086-\u009f\ufeff\ufffe\uffff]/gu,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

function yamlNumber(n: number): string {
  if (!Number.isFinite(n)) throw new Error(`cannot pass ${n} to Ansible`);
  const s = JSON.stringify(n);
  // YAML 1.1 floats need a dot: 1e+21 would be read as a string
  return /e/i.test(s) && !s.includes('.') ? s.replace(/e/i, '.0e') : s;
}
