/**
 * The pieces of the script jig's one-command launch: the in-memory tar (extracted by GNU tar as
 * the node does), attrs.map (the runner's helpers answer from it exactly as they answer with jq,
 * without starting jq), and the launcher's stdout protocol (log filter, frame parser).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JsonObject } from '../../src/domain/json.js';
import { LocalHammer } from '../../src/hammers/local.js';
import { attrsMap } from '../../src/jigs/script/attrs-map.js';
import { LaunchLogFilter, launchMark, parseLaunchOutput } from '../../src/jigs/script/launch.js';
import { resolveRunnerPath } from '../../src/jigs/script/index.js';
import { tarArchive, treeEntries } from '../../src/jigs/tar.js';

let base: string;
beforeAll(() => {
  base = mkdtempSync(path.join(os.tmpdir(), 'script-launch-'));
});
afterAll(() => {
  rmSync(base, { recursive: true, force: true });
});

describe('tarArchive', () => {
  it('is extracted by GNU tar with names, contents and modes intact', () => {
    const src = path.join(base, 'tree');
    const long = `${'d'.repeat(60)}/${'e'.repeat(60)}`;
    mkdirSync(path.join(src, long), { recursive: true });
    mkdirSync(path.join(src, 'ünï cødé'), { recursive: true });
    writeFileSync(path.join(src, long, `${'f'.repeat(120)}.sh`), 'echo long\n');
    writeFileSync(path.join(src, 'ünï cødé', 'x "q" $y.txt'), 'unicode\n');
    writeFileSync(path.join(src, 'bin'), Buffer.from([0, 1, 2, 255, 10]));
    writeFileSync(path.join(src, 'empty'), '');
    writeFileSync(path.join(src, 'run.sh'), '#!/bin/sh\n');
    chmodSync(path.join(src, 'run.sh'), 0o750);
    chmodSync(path.join(src, 'bin'), 0o600);
    return treeEntries(src, 'role').then((entries) => {
      entries.push({ name: 'big', mode: 0o644, data: Buffer.alloc(70_000, 'x') });
      const archive = tarArchive(entries);
      expect(archive.length % 10240).toBe(0);
      const out = path.join(base, 'out');
      mkdirSync(out);
      const res = spawnSync('tar', ['-x', '-o', '-p', '-f', '-', '-C', out], { input: archive });
      expect(res.stderr.toString()).toBe('');
      expect(res.status).toBe(0);
      const listing = execFileSync('find', ['.', '-printf', '%y %m %P\\n'], { cwd: out, encoding: 'utf8' })
        .trim()
        .split('\n')
        .sort();
      expect(listing).toContain(`f 644 role/${long}/${'f'.repeat(120)}.sh`);
      expect(listing).toContain('f 750 role/run.sh');
      expect(listing).toContain('f 600 role/bin');
      expect(listing).toContain('f 644 role/ünï cødé/x "q" $y.txt');
      expect(readFileSync(path.join(out, 'role', long, `${'f'.repeat(120)}.sh`), 'utf8')).toBe('echo long\n');
      expect([...readFileSync(path.join(out, 'role', 'bin'))]).toEqual([0, 1, 2, 255, 10]);
      expect(readFileSync(path.join(out, 'role', 'empty'), 'utf8')).toBe('');
      expect(readFileSync(path.join(out, 'big')).length).toBe(70_000);
      expect(statSync(path.join(out, 'role')).isDirectory()).toBe(true);
    });
  });

  it('refuses names that could escape the directory', () => {
    for (const name of ['/etc/x', '../x', 'a/../../x', 'a//b', './x', '']) {
      expect(() => tarArchive([{ name, mode: 0o644, data: Buffer.from('') }])).toThrow(/bad entry name/);
    }
  });
});

// attrs.map ///////////////////////////////////////////////////////////////////////////////////

const INPUTS: JsonObject = {
  s: {
    plain: 'x y',
    nl: 'a\nb\n\n',
    lead: '\n\nx',
    spaces: '  x  ',
    meta: "$(touch pwned) `id` ; rm -rf / \"q\" 'q' \\ * ? [a] ~ $HOME > < | & !x %s",
    uni: 'ünïcødé ✓ 日本',
    cr: 'a\r\n',
    del: 'a\u007fb\u001bc',
    tab: '\tx\t',
    empty: '',
    onlynl: '\n\n',
    dash: '-n',
  },
  n: { int: 42, neg: -7, zero: 0, big: 9007199254740993, float: 1.5, tiny: 1e-7, huge: 1e300, max: 9007199254740991 },
  b: { t: true, f: false },
  nul: null,
  arr: ['a', ['b', 'c'], { k: 'v' }, null, 5, 'x\ny'],
  obj: {
    '01': 'zero-one',
    '1': 'one',
    'a/b': 'slash',
    '': 'empty key',
    ' sp ace': 'sp',
    '$(x)': 'dollar',
    ']': 'bracket',
    '[': 'open',
    '*': 'star',
    '@': 'at',
    'new\nline': 'nl',
    'é': 'accent',
    '\\': 'backslash',
  },
  a: { b: { c: 'deep', d: [] } },
  'a/b': 'not reachable',
  emptyobj: {},
  emptyarr: [],
};

const PATHS = [
  ...Object.keys(INPUTS.s as JsonObject).map((k) => `s/${k}`),
  ...Object.keys(INPUTS.n as JsonObject).map((k) => `n/${k}`),
  ...Object.keys(INPUTS.obj as JsonObject).map((k) => `obj/${k}`),
  'b/t', 'b/f', 'nul', 'nul/x', 'missing', 'missing/deeper', '', '/', '//',
  'arr', 'arr/0', 'arr/01', 'arr/001', 'arr/1', 'arr/1/0', 'arr/1/01', 'arr/2', 'arr/2/k', 'arr/3', 'arr/4', 'arr/5',
  'arr/6', 'arr/99999999999999999999', 'arr/-1', 'arr/x', 'arr/ 1', 'arr/1.0', 'arr/4/0',
  'obj', 'obj/001', 'obj/a', 'a', 'a/b', '//a//b/c/', 'a/b/c', 'a/b/c/d', 'a/b/d', 'a/b/d/0',
  's', 's/plain/x', 'n/int/0', 'b/f/x', 'emptyobj', 'emptyarr', 'emptyarr/0', 'written', 'obj/written',
];

/** a probe role printing every helper's answer for every path in $TMPDIR/paths0 */
const PROBE = `
write_attribute obj/written/x 1
write_attribute arr/7/y 2
write_attribute written/z 3
i=0
while IFS= read -r -d '' p; do
  printf 'P<%s>\\n' "$p"
  printf 'R<'; read_attribute "$p"; printf '>\\n'
  if has_attribute "$p"; then echo H1; else echo H0; fi
  printf 'K<'; get_keys "$p"; printf '>\\n'
  # every third path also through a bash the script starts, and read_attribute_file_content
  if (( i++ % 3 == 0 )); then
    printf 'C<'; bash -c 'read_attribute "$1"; printf "|"; has_attribute "$1" && echo yes; get_keys "$1"' child "$p"; printf '>\\n'
    read_attribute_file_content "$p" "$TMPDIR/f"
    printf 'F<'; cat "$TMPDIR/f"; printf '>\\n'
  fi
done <"$TMPDIR/paths0"
`;

/** runs the runner over a work dir holding `inputs` (with attrs.map unless `withMap` is false); counts jq starts */
async function probe(inputs: JsonObject, paths: string[], withMap: boolean, body = PROBE): Promise<{ out: string; jq: number }> {
  const dir = mkdtempSync(path.join(base, 'work-'));
  writeFileSync(path.join(dir, 'attrs.json'), JSON.stringify(inputs));
  const map = attrsMap(inputs);
  if (withMap) {
    expect(map).toBeDefined();
    writeFileSync(path.join(dir, 'attrs.map'), map!);
  }
  writeFileSync(path.join(dir, 'paths0'), paths.map((p) => `${p}\0`).join(''));
  mkdirSync(path.join(dir, 'probe'));
  writeFileSync(path.join(dir, 'probe', '10-probe.sh'), body);
  // a jq that counts its starts
  const bin = path.join(dir, 'bin');
  mkdirSync(bin);
  const realJq = execFileSync('bash', ['-c', 'command -v jq'], { encoding: 'utf8' }).trim();
  writeFileSync(path.join(bin, 'jq'), `#!/bin/bash\necho x >>${path.join(dir, 'jq-calls')}\nexec ${realJq} "$@"\n`, { mode: 0o755 });
  cpSync(resolveRunnerPath(), path.join(dir, 'runner'));
  const res = await new LocalHammer().run(['bash', path.join(dir, 'runner'), dir, 'probe'], {
    env: { PATH: `${bin}:${process.env.PATH}` },
  });
  expect(res.stderr).not.toMatch(/scriptjig: FAILED/);
  expect(res.code).toBe(0);
  let jq = 0;
  try {
    jq = readFileSync(path.join(dir, 'jq-calls'), 'utf8').split('\n').length - 1;
  } catch {
    // never started
  }
  return { out: res.stdout, jq };
}

describe('attrs.map', () => {
  it('makes every helper answer byte for byte as jq over attrs.json does, in the runner and in bash it starts', async () => {
    const viaJq = await probe(INPUTS, PATHS, false);
    const viaMap = await probe(INPUTS, PATHS, true);
    expect(viaMap.out).toBe(viaJq.out);
    // and the answers are the documented ones
    const out = viaMap.out;
    expect(out).toContain(`P<s/meta>\nR<${(INPUTS.s as JsonObject).meta as string}>\nH1\n`);
    expect(out).toContain('P<s/nl>\nR<a\nb>\nH1\n');
    expect(out).toContain('P<s/lead>\nR<\n\nx>\n');
    expect(out).toContain('P<s/onlynl>\nR<>\nH0\n');
    expect(out).toContain('P<arr/01>\nR<["b","c"]>\nH1\nK<0\n1\n>\n');
    expect(out).toContain('P<obj/01>\nR<zero-one>\n');
    expect(out).toContain('P<obj/$(x)>\nR<dollar>\n');
    expect(out).toContain('P<a/b>\nR<{"c":"deep","d":[]}>\n');
    expect(out).toContain('P<n/big>\nR<9007199254740992>\n'); // beyond 2^53: as jq prints it
    expect(out).toContain('P<n/float>\nR<1.5>\n');
    expect(out).toContain('P<b/f>\nR<false>\nH1\n');
    expect(out).toContain('P<nul>\nR<>\nH0\nK<>\n');
    expect(out).toContain('P<arr/3>\nR<>\nH0\n');
    expect(out).toContain('P<obj/written>\nR<>\nH0\nK<x\n>\n');
    expect(out).toContain('P<emptyarr>\nR<[]>\nH1\nK<>\n');
    // jq only for what only jq can print: containers and non-integers, far fewer starts
    expect(viaMap.jq).toBeGreaterThan(0);
    expect(viaMap.jq).toBeLessThan(viaJq.jq / 4);
  }, 60_000);

  it('answers strings, integers, booleans, missing paths and get_keys without starting jq at all', async () => {
    const body = `
for p in s/plain s/nl s/meta n/int b/f nul missing arr/0 arr/05 arr/x obj/01 'obj/ sp ace' a/b/c; do
  printf '%s=<%s>\\n' "$p" "$(read_attribute "$p")"
  has_attribute "$p" && echo "has $p"
  get_keys "$p"
done
get_keys obj; get_keys arr; get_keys ''
read_attribute_file_content s/uni "$TMPDIR/u"; cat "$TMPDIR/u"
bash -c 'read_attribute s/plain; has_attribute n/int; get_keys a'
`;
    const { out, jq } = await probe(INPUTS, [], true, body);
    expect(jq).toBe(0);
    expect(out).toContain('s/meta=<$(touch pwned)');
    expect(out).toContain('arr/05=<x\ny>\nhas arr/05\n');
    expect(out).toContain('obj/ sp ace=<sp>\nhas obj/ sp ace\n');
    expect(out).toContain('\n$(x)\n');
  });

  it('is left out when the inputs hold a NUL, and the helpers then use jq as before', async () => {
    const inputs: JsonObject = { a: 'x\u0000y', b: 'plain' };
    expect(attrsMap(inputs)).toBeUndefined();
    const { out, jq } = await probe(inputs, ['a', 'b'], false);
    expect(out).toContain('P<a>\nR<xy>\n');
    expect(out).toContain('P<b>\nR<plain>\n');
    expect(jq).toBeGreaterThan(0);
  });

  it('holds NUL-separated path/entry pairs', () => {
    const map = attrsMap({ a: { b: ['x', 2, true, null, 1.5] }, 'c/d': 'e', '': 1 })!.toString('utf8');
    const fields = map.split('\0');
    expect(fields.pop()).toBe('');
    const pairs = Object.fromEntries(Array.from({ length: fields.length / 2 }, (_, i) => [fields[2 * i], fields[2 * i + 1]]));
    expect(pairs).toEqual({
      '/': 'oa\nc/d\n\n',
      '/a': 'ob\n',
      '/a/b': 'a0\n1\n2\n3\n4\n',
      '/a/b/0': 'sx',
      '/a/b/1': 's2',
      '/a/b/2': 'strue',
      '/a/b/4': 'j',
    });
  });
});

// The launcher's stdout ///////////////////////////////////////////////////////////////////////

describe('LaunchLogFilter', () => {
  const mark = launchMark('0123456789abcdef01234567');

  it('passes the runner output through and holds back the protocol, however the chunks split', () => {
    const stdout = `line 1\nno newline at the end${mark} wall\n${mark} F a/wall\nYQ==\n${mark} end\n${mark} removed\n`;
    for (let cut = 0; cut <= stdout.length; cut++) {
      for (const cut2 of [cut, Math.min(stdout.length, cut + 3)]) {
        const seen: string[] = [];
        const f = new LaunchLogFilter(mark, (t) => seen.push(t));
        f.push(stdout.slice(0, cut));
        f.push(stdout.slice(cut, cut2));
        f.push(stdout.slice(cut2));
        f.end();
        expect(seen.join('')).toBe('line 1\nno newline at the end');
      }
    }
  });

  it('lets a chunk that only looks like the start of a mark through at the latest at the end', () => {
    const seen: string[] = [];
    const f = new LaunchLogFilter(mark, (t) => seen.push(t));
    f.push('progress \u0001');
    expect(seen.join('')).toBe('progress ');
    f.push('x\n');
    expect(seen.join('')).toBe('progress \u0001x\n');
    f.push('tail \u0001scriptjig-');
    f.end();
    expect(seen.join('')).toBe('progress \u0001x\ntail \u0001scriptjig-');
  });
});

describe('parseLaunchOutput', () => {
  const mark = launchMark('feedfacefeedfacefeedface');
  const b64 = (s: string | Buffer): string => `${Buffer.from(s).toString('base64')}\n`;

  it('reads the files, symlinks and escaped paths of a complete frame', () => {
    const out = parseLaunchOutput(
      `script output${mark} wall\n${mark} F a/b/wall\n${b64('x\r\n')}${mark} F wall\n${b64('root')}` +
        `${mark} L leak/wall\n${mark} F new\\nline/back\\\\slash/wall\n${b64('ü')}${mark} F e/wall\n` +
        `${mark} end\n${mark} removed\n`,
      mark,
    );
    expect(out).toEqual({
      removed: true,
      complete: true,
      files: [
        { parts: ['a', 'b'], text: 'x\r\n' },
        { parts: [], text: 'root' },
        { parts: ['new\nline', 'back\\slash'], text: 'ü' },
        { parts: ['e'], text: '' },
      ],
      warnings: ['ignored symlink attrs/leak/wall'],
    });
  });

  it('says incomplete when the frame is cut short or garbled, and not removed unless told', () => {
    expect(parseLaunchOutput(`x${mark} wall\n${mark} F a/wall\nYQ==\n`, mark)).toMatchObject({ complete: false, removed: false });
    expect(parseLaunchOutput(`${mark} wall\n${mark} F a/wall\n!!\n${mark} end\n`, mark).complete).toBe(false);
    expect(parseLaunchOutput(`${mark} wall\n${mark} F a/notwall\n${mark} end\n`, mark).complete).toBe(false);
    expect(parseLaunchOutput(`${mark} wall\n${mark} what\n${mark} end\n`, mark).complete).toBe(false);
    expect(parseLaunchOutput('no mark at all', mark)).toMatchObject({ complete: false, removed: false });
    expect(parseLaunchOutput(`${mark} removed\n`, mark)).toMatchObject({ complete: false, removed: true });
    expect(parseLaunchOutput(`${mark} nodir\n`, mark)).toMatchObject({ complete: false, removed: true });
    // a mark of another run is just output
    expect(parseLaunchOutput(`${launchMark('0'.repeat(24))} removed\n`, mark).removed).toBe(false);
  });
});
