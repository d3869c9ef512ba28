import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JsonObject } from '../../src/domain/json.js';
import { LocalHammer } from '../../src/hammers/local.js';
import { createSimHammerFactory } from '../../src/hammers/sim.js';
import type { NodeHammer } from '../../src/hammers/types.js';
import { createScriptJig, readWallTree, resolveRunnerPath, scriptJig } from '../../src/jigs/script/index.js';
import { JigFailure } from '../../src/jigs/types.js';
import { jigContext } from '../helpers/jig-context.js';

let base: string;
let barclamp: string;
let simRoot: string;
let roleSeq = 0;

beforeAll(async () => {
  base = await mkdtemp(path.join(os.tmpdir(), 'script-jig-'));
  barclamp = path.join(base, 'barclamp');
  simRoot = path.join(base, 'sim');
});
afterAll(async () => {
  await rm(base, { recursive: true, force: true });
});

/** Writes `script/roles/<role>/` with the given files into the test barclamp; returns the role. */
async function role(files: Record<string, string>): Promise<string> {
  const name = `role-${++roleSeq}`;
  const dir = path.join(barclamp, 'script', 'roles', name);
  await mkdir(dir, { recursive: true });
  for (const [file, body] of Object.entries(files)) await writeFile(path.join(dir, file), body);
  return name;
}

const context = (hammer: NodeHammer, role: string, inputs?: JsonObject, signal?: AbortSignal, name = 'node-00001.sim.test') =>
  jigContext({ hammer, jig: 'script', role, sourcePath: barclamp, workRoot: base, inputs, signal, node: { name } });

/** the runner's temp dir as a script printed it (`TMP=<dir>`) */
function printedTmp(log: string): string {
  const m = /^TMP=(.+)$/m.exec(log);
  if (!m) throw new Error(`no TMP= line in log:\n${log}`);
  return m[1]!;
}

function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/** `inner`, recording each call as `run <argv0> <argv1>` / `copyTo` / `copyFrom` */
function counting(inner: NodeHammer, calls: string[]): NodeHammer {
  return {
    name: inner.name,
    actions: inner.actions,
    run: (argv, opts) => {
      calls.push(`run ${argv[0]} ${argv[1]}`);
      return inner.run(argv, opts);
    },
    copyTo: (local, remote) => {
      calls.push('copyTo');
      return inner.copyTo(local, remote);
    },
    copyFrom: (remote, local) => {
      calls.push('copyFrom');
      return inner.copyFrom(remote, local);
    },
    power: (action) => inner.power(action),
  };
}

const hammers: Array<[string, (node: string) => NodeHammer]> = [
  ['sim', (node) => createSimHammerFactory(simRoot).create({ nodeId: 1, nodeName: node, username: 'root' })],
  ['local', () => new LocalHammer()],
];

describe.each(hammers)('script jig over the %s hammer', (_name, makeHammer) => {
  const hammer = (): NodeHammer => makeHammer('node-00001.sim.test');

  it('declares itself as the script jig', () => {
    expect(scriptJig).toMatchObject({ name: 'script', stage: 'full', timeoutSeconds: 1800, rerunAfterCrash: true });
  });

  it('gives scripts their inputs through read_attribute, has_attribute and get_keys', async () => {
    const r = await role({
      '01-read.sh': [
        'echo "nested=[$(read_attribute crowbar/name)]"',
        'echo "second=[$(read_attribute crowbar/ntp/servers/1)]"',
        'echo "missing=[$(read_attribute crowbar/nope/0/x)]"',
        'echo "null=[$(read_attribute nothing)]"',
        'echo "false=[$(read_attribute flag)]"',
        'echo "obj=[$(read_attribute obj)]"',
        'has_attribute crowbar/name && echo has-name',
        'has_attribute nothing || echo no-nothing',
        'keys=$(get_keys crowbar/access_keys)',
        'echo "keys=[${keys//$\'\\n\'/,}]"',
        'write_attribute got/server "$(read_attribute crowbar/ntp/servers/0)"',
        'read_attribute_file_content crowbar/name "$TMPDIR/name.txt"',
        'write_attribute_file_content got/name_file "$TMPDIR/name.txt"',
        'echo "TMP=$TMPDIR"',
      ].join('\n'),
    });
    const inputs: JsonObject = {
      crowbar: {
        name: 'x y',
        ntp: { servers: ['10.0.0.1', '10.0.0.2'] },
        access_keys: { bob: 'ssh-rsa B', alice: 'ssh-rsa A' },
      },
      nothing: null,
      flag: false,
      obj: { k: 1, l: [true] },
    };
    const h = await context(hammer(), r, inputs);
    const result = await scriptJig.run(h.ctx);
    const log = h.log();
    expect(log).toContain('nested=[x y]\n');
    expect(log).toContain('second=[10.0.0.2]\n');
    expect(log).toContain('missing=[]\n');
    expect(log).toContain('null=[]\n');
    expect(log).toContain('false=[false]\n');
    expect(log).toContain('obj=[{"k":1,"l":[true]}]\n');
    expect(log).toContain('has-name\n');
    expect(log).toContain('no-nothing\n');
    expect(log).toContain('keys=[alice,bob]\n');
    expect(result.wall).toEqual({ got: { server: '10.0.0.1', name_file: 'x y' } });
  });

  it('returns written attributes with their values coerced', async () => {
    const r = await role({
      '01-write.sh': [
        'write_attribute out/bool_t true',
        'write_attribute out/bool_f False',
        'write_attribute out/int 42',
        'write_attribute out/neg -17',
        'write_attribute out/hex 0x1F',
        'write_attribute out/oct 0o17',
        'write_attribute out/bin 0b101',
        'write_attribute out/str abc',
        'write_attribute out/hexlike deadbeef',
        'write_attribute out/ip 1.2.3.4',
        'write_attribute out/float 1.5',
        'write_attribute out/json \'{"a":[1,2],"b":"c"}\'',
        'write_attribute out/arr \'[1,"x"]\'',
        'write_attribute out/badjson \'{not json\'',
        'write_attribute out/empty ""',
        'printf "from a file\\n" > "$TMPDIR/f"',
        'write_attribute_file_content out/file "$TMPDIR/f"',
      ].join('\n'),
    });
    const h = await context(hammer(), r);
    const { wall } = await scriptJig.run(h.ctx);
    expect(wall).toEqual({
      out: {
        bool_t: true,
        bool_f: false,
        int: 42,
        neg: -17,
        hex: 31,
        oct: 15,
        bin: 5,
        str: 'abc',
        hexlike: 'deadbeef',
        ip: '1.2.3.4',
        float: '1.5',
        json: { a: [1, 2], b: 'c' },
        arr: [1, 'x'],
        badjson: '{not json',
        file: 'from a file',
      },
    });
  });

  it('runs the role\'s *.sh scripts in alphabetical order, each also logged to logs/<script>.log', async () => {
    const r = await role({
      '02-y.sh': 'echo "second"\nwrite_attribute order "$(cat "$TMPDIR/attrs/order/wall")y"\necho "log01:$(grep -c -x -e first -e "++ 01-x.sh:1: echo first" "$TMPDIR/logs/01-x.sh.log")"\n',
      '01-x.sh': 'echo "first"\nwrite_attribute order x\n',
      '10-z.sh': 'echo "third"\nwrite_attribute order "$(cat "$TMPDIR/attrs/order/wall")z"\necho "TMP=$TMPDIR"\n',
      'README': 'not a script\n',
      'helper.txt': 'exit 1\n',
    });
    const h = await context(hammer(), r);
    const { wall } = await scriptJig.run(h.ctx);
    expect(wall).toEqual({ order: 'xyz' });
    const log = h.log();
    expect(log.indexOf('first\n')).toBeLessThan(log.indexOf('second\n'));
    expect(log.indexOf('second\n')).toBeLessThan(log.indexOf('third\n'));
    expect(log).toContain('log01:2\n');
    // xtrace of the scripts is in the log too
    expect(log).toMatch(/\+ 01-x\.sh:1: echo first/);
    expect(existsSync(printedTmp(log))).toBe(false);
  });

  it('fails with a JigFailure naming the script, its exit status and its stderr, and stops there', async () => {
    const r = await role({
      '01-x.sh': 'echo "TMP=$TMPDIR"\nwrite_attribute out/x 1\n',
      '02-y.sh': 'echo "boom-on-stderr" >&2\nfalse\necho never-printed\n',
      '03-z.sh': 'echo third-ran\n',
    });
    const h = await context(hammer(), r);
    const err = await scriptJig.run(h.ctx).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(JigFailure);
    const failure = err as JigFailure;
    expect(failure.exitStatus).toBe(1);
    expect(failure.message).toMatch(/script 02-y\.sh failed \(exit status 1\)/);
    expect(failure.message).toContain(`role ${r} on node node-00001.sim.test`);
    expect(failure.message).toContain('boom-on-stderr');
    expect(h.log()).not.toContain('never-printed');
    expect(h.log()).not.toContain('third-ran');
    expect(existsSync(printedTmp(h.log()))).toBe(false);
  });

  it('reports a script\'s own exit status', async () => {
    const r = await role({ '01-x.sh': 'echo "cannot continue" >&2\nexit 3\n' });
    const h = await context(hammer(), r);
    await expect(scriptJig.run(h.ctx)).rejects.toMatchObject({
      name: 'JigFailure',
      exitStatus: 3,
      message: expect.stringMatching(/script 01-x\.sh failed \(exit status 3\)[\s\S]*cannot continue/),
    });
  });

  it('kills a sleeping script promptly on abort, keeps the partial log and removes the temp dir', async () => {
    const r = await role({
      '01-sleep.sh': 'echo "TMP=$TMPDIR"\necho before-sleep\nsleep 1000 &\necho "PID=$!"\nwait\necho after-sleep\n',
    });
    const ac = new AbortController();
    const h = await context(hammer(), r, {}, ac.signal);
    const chunks: string[] = [];
    const log = h.ctx.log;
    h.ctx.log = (text) => {
      log(text);
      chunks.push(text);
      if (/^PID=\d+$/m.test(chunks.join(''))) ac.abort(new Error('run timed out'));
    };
    const started = Date.now();
    const err = await scriptJig.run(h.ctx).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(Date.now() - started).toBeLessThan(5000);
    expect(err).toBeInstanceOf(JigFailure);
    expect((err as Error).message).toMatch(/aborted \(run timed out\)/);
    const text = h.log();
    expect(text).toContain('before-sleep');
    expect(text).not.toContain('after-sleep');
    const pid = Number(/^PID=(\d+)$/m.exec(text)![1]);
    const deadline = Date.now() + 2000;
    while (alive(pid) && Date.now() < deadline) await new Promise((res) => setTimeout(res, 25));
    expect(alive(pid)).toBe(false);
    expect(existsSync(printedTmp(text))).toBe(false);
  });

  it('passes values with shell metacharacters verbatim and never executes them', async () => {
    const canary = await mkdtemp(path.join(base, 'canary-'));
    const precious = path.join(canary, 'precious');
    await mkdir(precious);
    const evil: JsonObject = {
      subst: `$(touch ${canary}/pwned1)`,
      semi: `x; rm -rf ${precious}; touch ${canary}/pwned2`,
      tick: `\`touch ${canary}/pwned3\``,
      quote: `it's "quoted" \\ and\nmultiline $HOME`,
    };
    const r = await role({
      '01-evil.sh': [
        'for k in subst semi tick quote; do',
        '  v=$(read_attribute "evil/$k")',
        '  echo "value: $v"',
        '  write_attribute "back/$k" "$v"',
        'done',
      ].join('\n'),
    });
    const h = await context(hammer(), r, { evil });
    const { wall } = await scriptJig.run(h.ctx);
    expect(wall).toEqual({ back: evil });
    expect(existsSync(precious)).toBe(true);
    for (const n of [1, 2, 3]) expect(existsSync(path.join(canary, `pwned${n}`))).toBe(false);
  });

  it('runs in one command on the node: no copies, one run, a private temp dir it removes itself', async () => {
    const r = await role({
      '01-x.sh': 'echo "TMP=$TMPDIR"\necho "MODE=$(stat -c %a "$TMPDIR")"\nwrite_attribute out/v "$(read_attribute in/v)"\n',
    });
    const calls: string[] = [];
    const h = await context(counting(hammer(), calls), r, { in: { v: 'a\nb $(x)' } });
    expect((await scriptJig.run(h.ctx)).wall).toEqual({ out: { v: 'a\nb $(x)' } });
    expect(calls).toEqual(['run bash -c']);
    const tmp = printedTmp(h.log());
    expect(tmp).toMatch(/\/tmp\/scriptjig-[A-Za-z0-9]{12}$/);
    expect(h.log()).toContain('MODE=700\n');
    expect(existsSync(tmp)).toBe(false);
  });

  it('still removes the temp dir when the launcher is killed before it could', async () => {
    // the script's $PPID is the launcher (the runner's parent): it dies without cleaning up
    const r = await role({ '01-x.sh': 'echo "TMP=$TMPDIR"\nkill -KILL "$PPID"\nsleep 0.2\n' });
    const calls: string[] = [];
    const h = await context(counting(hammer(), calls), r);
    await expect(scriptJig.run(h.ctx)).rejects.toThrow(/the script runner failed \(killed by SIGKILL\)/);
    expect(calls).toEqual(['run bash -c', 'run rm -rf']);
    expect(existsSync(printedTmp(h.log()))).toBe(false);
  });

  it('never works in a temp dir that already exists, and leaves that dir alone', async () => {
    const taken = `/tmp/scriptjig-Taken${process.pid}x${++roleSeq}`;
    const node = hammer();
    expect((await node.run(['mkdir', '-p', taken])).code).toBe(0);
    expect((await node.run(['touch', `${taken}/canary`])).code).toBe(0);
    try {
      const r = await role({ '01-x.sh': 'echo never-ran\n' });
      const calls: string[] = [];
      const h = await context(counting(hammer(), calls), r);
      const jig = createScriptJig({ remoteTempPath: () => taken });
      await expect(jig.run(h.ctx)).rejects.toThrow(/cannot create the run's directory/);
      expect(calls).toEqual(['run bash -c']);
      expect(h.log()).not.toContain('never-ran');
      expect((await node.run(['test', '-e', `${taken}/canary`])).code).toBe(0);
    } finally {
      await node.run(['rm', '-rf', taken]);
    }
  });

  it('returns exactly what the scripts wrote: the wall readWallTree reads from the same attrs tree', async () => {
    const copy = path.join(base, `attrs-copy-${++roleSeq}`);
    const r = await role({
      '01-write.sh': [
        "write_attribute t/crlf $'a\\r\\n'",
        "write_attribute t/nls $'x\\n\\n\\n'",
        "write_attribute t/uni 'ünïcødé ✓'",
        "printf 'a\\0b' >\"$TMPDIR/f\"; write_attribute_file_content t/nul \"$TMPDIR/f\"",
        "printf '\\xff\\xfeok\\xc3' >\"$TMPDIR/g\"; write_attribute_file_content t/bad \"$TMPDIR/g\"",
        ': >"$TMPDIR/e"; write_attribute_file_content t/empty "$TMPDIR/e"',
        'write_attribute t/json \'{"a":[1,"x\\ny"]}\'',
        "write_attribute 'n/sp ace' 1",
        "write_attribute 'n/back\\slash' 2",
        "write_attribute $'n/new\\nline' 3",
        'write_attribute n/-dash 4',
        'write_attribute n/.dot 5',
        'write_attribute deep/a scalar',
        'write_attribute deep/a/b 1',
        'mkdir -p "$TMPDIR/attrs/leak" "$TMPDIR/attrs/fifo"',
        'ln -s /etc/hostname "$TMPDIR/attrs/leak/wall"',
        'ln -s /etc "$TMPDIR/attrs/dirlink"',
        'mkfifo "$TMPDIR/attrs/fifo/wall"',
        'printf root >"$TMPDIR/attrs/wall"',
        'cp -a "$TMPDIR/attrs" "$(read_attribute copy)"',
      ].join('\n'),
    });
    const h = await context(hammer(), r, { copy });
    const { wall } = await scriptJig.run(h.ctx);
    const expected = await readWallTree(copy);
    expect(wall).toEqual(expected.wall);
    expect(wall).toMatchObject({
      t: { crlf: 'a', nls: 'x', nul: 'a\u0000b', bad: '\ufffd\ufffdok\ufffd', json: { a: [1, 'x\ny'] } },
      n: { 'sp ace': 1, 'back\\slash': 2, 'new\nline': 3, '-dash': 4, '.dot': 5 },
      deep: { a: { b: 1 } },
    });
    expect(expected.warnings.length).toBe(4);
    for (const w of expected.warnings) expect(h.log()).toContain(`scriptjig: ${w}\n`);
  });

  it('keeps its own protocol out of the run log', async () => {
    const r = await role({ '01-x.sh': 'printf "no newline at the end"\nwrite_attribute a 1\n' });
    const h = await context(hammer(), r, { nul: 'x\u0000y' });
    expect((await scriptJig.run(h.ctx)).wall).toEqual({ a: 1 });
    expect(h.log()).toContain('no newline at the end');
    expect(h.log()).not.toContain('\u0001');
  });

  it('reads inputs holding a NUL with jq, as before', async () => {
    const r = await role({ '01-x.sh': 'write_attribute out "$(read_attribute in/v)"\n' });
    const h = await context(hammer(), r, { in: { v: 'x\u0000y z' } });
    expect((await scriptJig.run(h.ctx)).wall).toEqual({ out: 'xy z' });
  });

  it('fails clearly when the role has no scripts directory', async () => {
    const h = await context(hammer(), 'no-such-role');
    const expected = path.join(barclamp, 'script', 'roles', 'no-such-role');
    await expect(scriptJig.run(h.ctx)).rejects.toThrow(JigFailure);
    await expect(scriptJig.run(h.ctx)).rejects.toThrow(`expected a directory of *.sh scripts at ${expected}`);
  });

  it('fails clearly when the barclamp has no source path', async () => {
    const h = await context(hammer(), 'anything');
    h.ctx.sourcePath = null;
    await expect(scriptJig.run(h.ctx)).rejects.toThrow(/barclamp test has no source path/);
  });
});

describe('script jig on sim nodes', () => {
  it('keeps sandboxes apart: what a script on node A writes under HOME is not seen on node B', async () => {
    const factory = createSimHammerFactory(simRoot);
    const a = factory.create({ nodeId: 1, nodeName: 'iso-a.sim.test', username: 'root' });
    const b = factory.create({ nodeId: 2, nodeName: 'iso-b.sim.test', username: 'root' });
    const r = await role({
      '01-look.sh': [
        'if [[ -e $HOME/secret.txt ]]; then write_attribute seen_secret true; else write_attribute seen_secret false; fi',
        'if [[ -e $TMPDIR/../secret-tmp.txt ]]; then write_attribute seen_tmp true; else write_attribute seen_tmp false; fi',
        'echo "$ROLE on $CROWBAR_SIM_NODE" > "$HOME/secret.txt"',
        'echo tmp > "$TMPDIR/../secret-tmp.txt"',
      ].join('\n'),
    });
    const onA = await context(a, r, {}, undefined, 'iso-a.sim.test');
    expect((await scriptJig.run(onA.ctx)).wall).toEqual({ seen_secret: false, seen_tmp: false });
    // a second run on A sees A's own files
    const againA = await context(a, r, {}, undefined, 'iso-a.sim.test');
    expect((await scriptJig.run(againA.ctx)).wall).toEqual({ seen_secret: true, seen_tmp: true });
    const onB = await context(b, r, {}, undefined, 'iso-b.sim.test');
    expect((await scriptJig.run(onB.ctx)).wall).toEqual({ seen_secret: false, seen_tmp: false });
    expect(readFileSync(a.hostPath('/root/secret.txt'), 'utf8')).toBe(`${r} on iso-a.sim.test\n`);
  });
});

describe('script jig runner', () => {
  it('exits with a clear message when jq is missing on the node', async () => {
    const dir = await mkdtemp(path.join(base, 'nojq-'));
    const emptyPath = path.join(dir, 'bin');
    await mkdir(emptyPath);
    const res = await new LocalHammer().run(['/bin/bash', resolveRunnerPath(), dir, 'r'], {
      env: { PATH: emptyPath },
    });
    expect(res.code).toBe(3);
    expect(res.stderr).toContain('jq is required on the node');
  });

  it('is found from the compiled dist/ layout as well as from src/', () => {
    const repo = path.resolve(import.meta.dirname, '..', '..');
    const fromSrc = resolveRunnerPath(new URL(`file://${repo}/src/jigs/script/script-jig.ts`).href);
    const fromDist = resolveRunnerPath(new URL(`file://${repo}/dist/jigs/script/script-jig.js`).href);
    expect(fromSrc).toBe(path.join(repo, 'src', 'jigs', 'script', 'runner.sh'));
    expect(fromDist).toBe(fromSrc);
  });
});
