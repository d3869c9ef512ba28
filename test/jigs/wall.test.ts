import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { coerceWallValue, readWallTree } from '../../src/jigs/script/index.js';

describe('coerceWallValue', () => {
  it.each([
    ['true', true],
    ['TRUE\n', true],
    ['false', false],
    ['False', false],
    ['42', 42],
    ['42\n', 42],
    ['-17', -17],
    ['007', 7],
    ['0x1F', 31],
    ['-0x10', -16],
    ['0o17', 15],
    ['0b101', 5],
    ['{"a":[1,2]}', { a: [1, 2] }],
    ['[1,"x"]\n', [1, 'x']],
    ['abc', 'abc'],
    ['deadbeef', 'deadbeef'],
    ['1.2.3.4', '1.2.3.4'],
    ['1.5', '1.5'],
    ['0x', '0x'],
    ['0b102', '0b102'],
    ['+5', '+5'],
    ['{not json', '{not json'],
    ['null', 'null'],
    ['12345678901234567890123', '12345678901234567890123'],
    ['ssh-rsa AAAA key\n', 'ssh-rsa AAAA key'],
    ['two\nlines\n\n', 'two\nlines'],
  ])('%j → %j', (raw, expected) => {
    expect(coerceWallValue(raw)).toEqual(expected);
  });

  it('ignores empty and blank files', () => {
    expect(coerceWallValue('')).toBeUndefined();
    expect(coerceWallValue('\n')).toBeUndefined();
    expect(coerceWallValue('  \n')).toBeUndefined();
  });
});

describe('readWallTree', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'wall-tree-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function wall(rel: string, content: string): Promise<void> {
    await mkdir(path.join(dir, rel), { recursive: true });
    await writeFile(path.join(dir, rel, 'wall'), content);
  }

  it('places each wall file at its directory path', async () => {
    await wall('crowbar/ntp/server', '10.0.0.1');
    await wall('crowbar/ntp/enabled', 'true');
    await wall('crowbar/count', '3');
    await wall('empty', '');
    expect((await readWallTree(dir)).wall).toEqual({
      crowbar: { ntp: { server: '10.0.0.1', enabled: true }, count: 3 },
    });
  });

  it('lets deeper values win over a shallower scalar, and merges into a shallower object', async () => {
    await wall('a', 'scalar');
    await wall('a/b', '1');
    await wall('o', '{"x":1}');
    await wall('o/y', '2');
    const { wall: w, warnings } = await readWallTree(dir);
    expect(w).toEqual({ a: { b: 1 }, o: { x: 1, y: 2 } });
    expect(warnings.join('\n')).toMatch(/attribute a was replaced/);
  });

  it('never follows symlinks out of the tree and ignores a wall at the root', async () => {
    const outside = path.join(dir, '..', `${path.basename(dir)}-outside`);
    await writeFile(outside, 'host secret');
    try {
      await mkdir(path.join(dir, 'attrs', 'leak'), { recursive: true });
      await symlink(outside, path.join(dir, 'attrs', 'leak', 'wall'));
      await symlink(path.dirname(outside), path.join(dir, 'attrs', 'dirlink'));
      await writeFile(path.join(dir, 'attrs', 'wall'), 'root value');
      const { wall: w, warnings } = await readWallTree(path.join(dir, 'attrs'));
      expect(w).toEqual({});
      expect(warnings.join('\n')).toMatch(/ignored symlink attrs\/leak\/wall/);
      expect(warnings.join('\n')).toMatch(/ignored attrs\/wall/);
    } finally {
      await rm(outside, { force: true });
    }
  });

  it('gives an empty wall when nothing was written', async () => {
    expect(await readWallTree(path.join(dir, 'missing'))).toEqual({ wall: {}, warnings: [] });
  });
});
