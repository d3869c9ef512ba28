/**
 * Barclamp import (spec §6) on every dialect: the built-in barclamps, idempotent re-import,
 * late binding, cycle refusal, attaches, wants-attribs, jig implementors, validation errors
 * with file and line, and jig activation per mode.
 */
import { beforeEach, expect, it } from 'vitest';
import type { DB } from '../../src/store/db.js';
import {
  builtinBarclampDir,
  importBarclampDir,
  importBarclampDoc,
  importBarclampYaml,
  type ImportMode,
} from '../../src/engine/barclamp-import.js';
import { getBarclamp, listBarclamps, requireBarclamp } from '../../src/store/barclamps.js';
import { listJigs } from '../../src/store/jigs.js';
import { listAvailableHammers, getAvailableHammer } from '../../src/store/hammers.js';
import { getAttrib, listAttribs, nodeLevelAttribs } from '../../src/store/attribs.js';
import {
  getRole,
  listRoleRequires,
  listRoles,
  requireRole,
  roleAttribs,
  roleParents,
  setRoleTemplate,
  unresolvedRequirements,
  wantedAttribs,
} from '../../src/store/roles.js';
import { forEachDialect, truncateAll } from '../helpers/stores.js';
import { refusal } from '../helpers/refusal.js';

const CORE = `
barclamp: { name: core }
jigs:
  - { name: noop, class: NoopJig }
  - { name: script, class: 'BarclampCrowbar::Jig' }
  - { name: test, class: 'BarclampTest::Jig' }
  - { name: role-provided, class: 'BarclampCrowbar::RoleProvidedJig' }
`;

async function yaml(db: DB, text: string, file = 'x.yml', mode: ImportMode = 'production') {
  return importBarclampYaml(db, text, { file, mode, sourcePath: '/tmp/bc' });
}

async function counts(db: DB): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const t of ['barclamps', 'jigs', 'roles', 'role_requires', 'role_require_attribs', 'attribs', 'available_hammers'] as const) {
    const r = await db.selectFrom(t).select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    out[t] = Number(r.n);
  }
  return out;
}

async function requiresOf(db: DB, role: string): Promise<string[]> {
  const r = await requireRole(db, role);
  return (await listRoleRequires(db, r.id)).map((e) => e.requires).sort();
}

forEachDialect('barclamp import', (store) => {
  const db = () => store().handle.db;
  beforeEach(async () => {
    await truncateAll(store().handle);
  });

  it('imports the built-in barclamps: core, crowbar and test', async () => {
    const results = await importBarclampDir(db(), builtinBarclampDir(), { mode: 'production' });
    expect(results.map((r) => r.barclamp.name)).toEqual(['core', 'crowbar', 'test']);

    const core = await requireBarclamp(db(), 'core');
    expect(core.barclamp_id).toBe(core.id);
    expect(core.version).toBe('2.E');
    expect(core.build_version).toBe('0.0');
    expect(core.source_path).toBe(builtinBarclampDir());
    expect((core.cfg_data['barclamp'] as Record<string, unknown>)['source_path']).toBe(builtinBarclampDir());
    for (const name of ['crowbar', 'test']) {
      const bc = await requireBarclamp(db(), name);
      expect(bc.barclamp_id).toBe(core.id);
      expect(bc.source_path).toBe(builtinBarclampDir());
    }
    expect((await requireBarclamp(db(), 'test')).description).toBe('Test Barclamp Integrations');

    const jigs = await listJigs(db());
    expect(jigs.map((j) => j.name).sort()).toEqual(
      ['ansible', 'chef', 'chef-solo', 'noop', 'puppet-sa', 'role-provided', 'script', 'test'],
    );
    const chef = jigs.find((j) => j.name === 'chef')!;
    expect(chef).toMatchObject({ type: 'BarclampChef::Jig', client_role_name: 'chef-client', order: 100, barclamp_id: core.id });

    const hammers = await listAvailableHammers(db());
    expect(hammers.map((h) => [h.name, h.klass, h.priority])).toEqual([
      ['ssh', 'SecureShellHammer', 0],
      ['local', 'LocalHammer', 0],
      ['sim', 'SimHammer', 0],
    ]);
    expect((await getAvailableHammer(db(), 'ssh'))?.klass).toBe('SecureShellHammer');

    const crowbar = await requireBarclamp(db(), 'crowbar');
    const nodeLevel = await nodeLevelAttribs(db(), crowbar.id);
    expect(nodeLevel.map((a) => a.name)).toContain('hint-admin-macs');
    expect(nodeLevel.find((a) => a.name === 'stay_on')).toMatchObject({ map: 'crowbar/stay_on', writable: true });
    expect(nodeLevel.find((a) => a.name === 'asset_tag')).toMatchObject({ writable: false, schema: null });
    expect(await getAttrib(db(), 'test-random')).toMatchObject({ map: 'test/random', role_id: null, default: { value: 0 } });
    expect(await getAttrib(db(), 'test-marker')).toMatchObject({ map: 'test/marker', default: { value: 'MARK' } });

    // crowbar roles: bindable only where every requirement is shipped
    expect(await unresolvedRequirements(db(), (await requireRole(db(), 'crowbar-access')).id)).toEqual([]);
    expect(await unresolvedRequirements(db(), (await requireRole(db(), 'crowbar-joined-node')).id)).toEqual([]);
    expect(await unresolvedRequirements(db(), (await requireRole(db(), 'crowbar-admin-node')).id)).toEqual(
      ['deployer-client', 'dns-client', 'logging-client', 'network-lldpd', 'network-server', 'ntp-client', 'provisioner-os-install'],
    );
    expect(await requiresOf(db(), 'crowbar-api_server')).toEqual(['chef-client', 'consul']);
    expect(await requiresOf(db(), 'crowbar-build-root-key')).toEqual(['chef-client']);
    const access = await requireRole(db(), 'crowbar-access');
    expect((await roleAttribs(db(), access.id)).map((a) => a.name)).toEqual(['crowbar-machine_key', 'crowbar-access_keys']);
    const joined = await requireRole(db(), 'crowbar-joined-node');
    expect(joined).toMatchObject({ provides: ['crowbar-installed-node', 'crowbar-managed-node'], conflicts: ['crowbar-managed-node'], cohort: 1 });
    expect((await roleParents(db(), joined.id)).map((r) => r.name)).toEqual(['crowbar-access']);
    expect((await requireRole(db(), 'crowbar-api_service')).description).toBe('Crowbar Api Service');
  });

  it('test barclamp: exactly the roles, flags, requires and attribs of the original test.yml', async () => {
    await importBarclampDir(db(), builtinBarclampDir(), { mode: 'development' });
    const test = await requireBarclamp(db(), 'test');
    const roles = (await listRoles(db())).filter((r) => r.barclamp_id === test.id);
    const flagsOf = (r: (typeof roles)[number]) =>
      (['library', 'implicit', 'bootstrap', 'discovery', 'cluster', 'destructive', 'abstract', 'milestone', 'powersave', 'service'] as const)
        .filter((f) => r[f]);
    const table = Object.fromEntries(
      await Promise.all(
        roles.map(async (r) => [
          r.name,
          {
            jig: r.jig_name,
            flags: flagsOf(r),
            requires: await requiresOf(db(), r.name),
            cohort: r.cohort,
            attribs: Object.fromEntries((await roleAttribs(db(), r.id)).map((a) => [a.name, [a.map, a.default.value]])),
          },
        ] as const),
      ),
    );
    expect(table).toEqual({
      'test-admin': {
        jig: 'test', flags: ['bootstrap'], requires: [], cohort: 0,
        attribs: { 'test-admin-delay': ['delay', 1], 'test-admin-marker': ['marker', 'admin'], 'test-admin-test': ['test', true] },
      },
      'test-server': {
        jig: 'test', flags: [], requires: ['test-admin'], cohort: 1,
        attribs: { 'test-server-delay': ['delay', 4], 'test-server-marker': ['marker', 'server'], 'test-server-test': ['test', true] },
      },
      'test-library': {
        jig: 'test', flags: ['library', 'implicit'], requires: ['test-admin'], cohort: 1,
        attribs: { 'test-library-delay': ['delay', 5], 'test-library-marker': ['marker', 'library'], 'test-library-test': ['test', true] },
      },
      'test-client': {
        jig: 'test', flags: ['implicit', 'milestone'], requires: ['test-library', 'test-server'], cohort: 2,
        attribs: { 'test-client-delay': ['delay', 6], 'test-client-marker': ['marker', 'client'], 'test-client-test': ['test', true] },
      },
      'test-client-client': {
        jig: 'test', flags: [], requires: ['test-client'], cohort: 3,
        attribs: {
          'test-client-client-delay': ['delay', 6], 'test-client-client-marker': ['marker', 'client-client'],
          'test-client-client-test': ['test', true],
        },
      },
      // the original declares `test-discovery-delay` twice; the second (map `test`) wins
      'test-discovery': {
        jig: 'test', flags: ['bootstrap', 'discovery'], requires: ['test-admin'], cohort: 1,
        attribs: { 'test-discovery-delay': ['test', true], 'test-discovery-marker': ['marker', 'discovery'] },
      },
      'test-async': {
        jig: 'role-provided', flags: [], requires: ['test-client'], cohort: 3,
        attribs: { 'test-async-result': ['async/result', null] },
      },
      'test-fails': { jig: 'test', flags: [], requires: [], cohort: 0, attribs: {} },
      'test-event': { jig: 'test', flags: [], requires: [], cohort: 0, attribs: {} },
    });
    expect((await listAttribs(db(), { roleId: null, barclampId: test.id })).map((a) => a.name)).toEqual(['test-random', 'test-marker']);
    for (const r of roles) {
      expect(r.type).toBe('Role');
      expect(await unresolvedRequirements(db(), r.id)).toEqual([]);
    }
    expect((await requireRole(db(), 'test-admin')).description).toBe('Test Admin');
  });

  it('activates jigs per mode: production all but test, development only noop, test and role-provided', async () => {
    await importBarclampDir(db(), builtinBarclampDir(), { mode: 'production' });
    const prod = Object.fromEntries((await listJigs(db())).map((j) => [j.name, j.active]));
    expect(prod).toEqual({
      script: true, noop: true, test: false, chef: true, 'chef-solo': true, 'puppet-sa': true, 'role-provided': true, ansible: true,
    });
    await importBarclampDir(db(), builtinBarclampDir(), { mode: 'development' });
    const dev = Object.fromEntries((await listJigs(db())).map((j) => [j.name, j.active]));
    expect(dev).toEqual({
      script: false, noop: true, test: true, chef: false, 'chef-solo': false, 'puppet-sa': false, 'role-provided': true, ansible: false,
    });
  });

  it('re-import is idempotent and keeps a role template edited at runtime', async () => {
    await importBarclampDir(db(), builtinBarclampDir(), { mode: 'development' });
    const before = await counts(db());
    const admin = await requireRole(db(), 'test-admin');
    await setRoleTemplate(db(), admin.id, { test: { marker: 'edited' } });
    await importBarclampDir(db(), builtinBarclampDir(), { mode: 'development' });
    expect(await counts(db())).toEqual(before);
    const again = await requireRole(db(), 'test-admin');
    expect(again.id).toBe(admin.id);
    expect(again.template).toEqual({ test: { marker: 'edited' } });
    expect((await listBarclamps(db())).map((b) => b.name)).toEqual(['core', 'crowbar', 'test']);
  });

  it('concurrent imports of the same barclamps take turns and do not duplicate rows', async () => {
    await Promise.all([1, 2, 3].map(() => importBarclampDir(db(), builtinBarclampDir(), { mode: 'production' })));
    const once = await counts(db());
    await truncateAll(store().handle);
    await importBarclampDir(db(), builtinBarclampDir(), { mode: 'production' });
    expect(await counts(db())).toEqual(once);
  });

  it('re-import makes requires and wants-attribs match the YAML again', async () => {
    await yaml(db(), CORE);
    await yaml(db(), `
barclamp: { name: app, parent: core }
roles:
  - { name: app-base, jig: noop, attribs: [ { name: app-port, map: app/port, default: 80 } ] }
  - { name: app-extra, jig: noop }
  - { name: app-web, jig: noop, requires: [app-extra], wants-attribs: [app-port] }
`);
    expect(await requiresOf(db(), 'app-web')).toEqual(['app-base', 'app-extra']);
    await yaml(db(), `
barclamp: { name: app, parent: core }
roles:
  - { name: app-base, jig: noop, attribs: [ { name: app-port, map: app/port, default: 80 } ] }
  - { name: app-extra, jig: noop }
  - { name: app-web, jig: noop }
`);
    const web = await requireRole(db(), 'app-web');
    expect(await requiresOf(db(), 'app-web')).toEqual([]);
    expect(await wantedAttribs(db(), web.id)).toEqual([]);
    expect(web.cohort).toBe(0);
  });

  it('late binding: a requirement on a role imported later resolves and cohorts follow', async () => {
    await yaml(db(), CORE);
    await yaml(db(), `
barclamp: { name: first, parent: core }
roles:
  - { name: first-top, jig: noop, requires: [second-mid] }
`);
    let top = await requireRole(db(), 'first-top');
    expect(await unresolvedRequirements(db(), top.id)).toEqual(['second-mid']);
    expect(top.cohort).toBe(0);

    await yaml(db(), `
barclamp: { name: second, parent: core }
roles:
  - { name: second-mid, jig: noop, requires: [second-base, third-missing] }
  - { name: second-base, jig: noop }
`);
    top = await requireRole(db(), 'first-top');
    expect(top.cohort).toBe(2);
    expect((await roleParents(db(), top.id)).map((r) => r.name)).toEqual(['second-mid']);
    // transitive: the closure still misses third-missing
    expect(await unresolvedRequirements(db(), top.id)).toEqual(['third-missing']);

    await yaml(db(), `
barclamp: { name: third, parent: core }
roles:
  - { name: third-root, jig: noop }
  - { name: third-missing, jig: noop, requires: [third-root] }
`);
    top = await requireRole(db(), 'first-top');
    expect(await unresolvedRequirements(db(), top.id)).toEqual([]);
    expect(top.cohort).toBe(3);
    expect((await requireRole(db(), 'second-mid')).cohort).toBe(2);
  });

  it('refuses a cycle, names the path and leaves nothing half-written', async () => {
    await yaml(db(), CORE);
    await yaml(db(), `
barclamp: { name: ring, parent: core }
roles:
  - { name: ring-a, jig: noop, requires: [ring-b] }
`);
    const before = await counts(db());
    const err = await refusal(yaml(db(), `
barclamp: { name: loop, parent: core }
roles:
  - { name: ring-b, jig: noop, requires: [ring-c] }
  - { name: ring-c, jig: noop, requires: [ring-a] }
`, 'loop.yml'));
    expect(err.code).toBe('CYCLE');
    expect(err.message).toContain('loop.yml');
    expect(err.message).toMatch(/ring-b -> ring-c -> ring-a -> ring-b|ring-c -> ring-a -> ring-b -> ring-c/);
    expect(await counts(db())).toEqual(before);
    expect(await getBarclamp(db(), 'loop')).toBeUndefined();
    expect(await getRole(db(), 'ring-b')).toBeUndefined();
    expect(await unresolvedRequirements(db(), (await requireRole(db(), 'ring-a')).id)).toEqual(['ring-b']);

    const self = await refusal(yaml(db(), `
barclamp: { name: selfish, parent: core }
roles:
  - { name: selfish-a, jig: noop, requires: [selfish-a] }
`));
    expect(self.message).toContain('selfish-a -> selfish-a');
  });

  it('attaches: X requires the attaching role', async () => {
    await yaml(db(), CORE);
    await yaml(db(), `
barclamp: { name: host, parent: core }
roles:
  - { name: host-node, jig: noop }
`);
    await yaml(db(), `
barclamp: { name: addon, parent: core }
roles:
  - { name: addon-agent, jig: noop, attaches: [host-node] }
`);
    expect(await requiresOf(db(), 'host-node')).toEqual(['addon-agent']);
    expect((await requireRole(db(), 'host-node')).cohort).toBe(1);
    // re-importing host (whose YAML never listed it) keeps the attached requirement
    await yaml(db(), `
barclamp: { name: host, parent: core }
roles:
  - { name: host-node, jig: noop }
`);
    expect(await requiresOf(db(), 'host-node')).toEqual(['addon-agent']);
    // dropping attaches removes it
    await yaml(db(), `
barclamp: { name: addon, parent: core }
roles:
  - { name: addon-agent, jig: noop }
`);
    expect(await requiresOf(db(), 'host-node')).toEqual([]);

    const err = await refusal(yaml(db(), `
barclamp: { name: lost, parent: core }
roles:
  - name: lost-agent
    jig: noop
    attaches: [nowhere-role]
`, 'lost.yml'));
    expect(err.code).toBe('BARCLAMP_INVALID');
    expect(err.details).toMatchObject({ file: 'lost.yml', line: 6 });
  });

  it('wants-attribs imply a requirement on the owning role, also for an attrib defined later', async () => {
    await yaml(db(), CORE);
    await yaml(db(), `
barclamp: { name: svc, parent: core }
roles:
  - name: svc-client
    jig: noop
    wants-attribs:
      - svc-servers
      - { name: svc-port, at: client/port }
      - test-random
`);
    const client = await requireRole(db(), 'svc-client');
    expect(await requiresOf(db(), 'svc-client')).toEqual([]);
    expect(await wantedAttribs(db(), client.id)).toEqual([]);

    await yaml(db(), `
barclamp: { name: svcd, parent: core }
roles:
  - name: svc-server
    jig: noop
    attribs:
      - { name: svc-servers, map: svc/servers, schema: { type: seq, sequence: [ { type: str } ] } }
      - { name: svc-port, map: svc/port, default: 123 }
attribs:
  - { name: test-random, map: test/random, default: 0 }
`);
    expect(await requiresOf(db(), 'svc-client')).toEqual(['svc-server']);
    expect((await requireRole(db(), 'svc-client')).cohort).toBe(1);
    const wanted = await wantedAttribs(db(), client.id);
    expect(wanted.map((w) => [w.attrib.name, w.at])).toEqual([
      ['svc-servers', 'svc/servers'],
      ['svc-port', 'client/port'],
      ['test-random', 'test/random'],
    ]);
    expect(wanted[0]!.attrib.writable).toBe(true);
    expect(wanted[1]!.attrib.default).toEqual({ value: 123 });
  });

  it('adds the jig implementor role as a requirement of every role using the jig', async () => {
    await yaml(db(), `
barclamp: { name: core }
jigs:
  - { name: noop, class: NoopJig }
  - { name: script, class: 'BarclampCrowbar::Jig' }
  - { name: fancy, class: FancyJig, implementor: fancy-client }
roles:
  - { name: fancy-client, jig: script, flags: [implicit] }
  - { name: fancy-thing, jig: fancy }
  - { name: fancy-self, jig: fancy }
`);
    expect(await requiresOf(db(), 'fancy-thing')).toEqual(['fancy-client']);
    expect(await requiresOf(db(), 'fancy-client')).toEqual([]);
    expect((await requireRole(db(), 'fancy-thing')).cohort).toBe(1);
  });

  it('refuses malformed YAML whole, with file and line', async () => {
    const err = await refusal(yaml(db(), 'barclamp:\n  name: broken\nroles:\n  - name: a\n    jig: [noop\n', 'broken.yml'));
    expect(err.code).toBe('BARCLAMP_INVALID');
    expect(err.details['file']).toBe('broken.yml');
    expect(typeof err.details['line']).toBe('number');
    expect(err.message).toMatch(/^broken\.yml:\d+: malformed YAML/);
    expect((await counts(db()))['barclamps']).toBe(0);
  });

  it('refuses schema problems with the file and the line of the offending node', async () => {
    await yaml(db(), CORE);
    const missingJig = await refusal(yaml(db(), `barclamp:
  name: demo
  parent: core
roles:
  - name: demo-ok
    jig: noop
  - name: demo-nojig
    description: no jig here
`, 'demo.yml'));
    expect(missingJig.code).toBe('BARCLAMP_INVALID');
    expect(missingJig.details).toMatchObject({ file: 'demo.yml', line: 7 });
    expect(missingJig.message).toMatch(/^demo\.yml:7: role 'demo-nojig' jig is missing/);
    expect(await getBarclamp(db(), 'demo')).toBeUndefined();
    expect(await getRole(db(), 'demo-ok')).toBeUndefined();

    const badFlag = await refusal(yaml(db(), `barclamp:
  name: demo
  parent: core
roles:
  - name: demo-a
    jig: noop
    flags:
      - implicit
      - shiny
`, 'flags.yml'));
    expect(badFlag.details).toMatchObject({ file: 'flags.yml', line: 9 });
    expect(badFlag.message).toContain('unknown role flag "shiny"');

    const unknownJig = await refusal(yaml(db(), `barclamp:
  name: demo
  parent: core
roles:
  - name: demo-a
    jig: warp-drive
`, 'jig.yml'));
    expect(unknownJig.details).toMatchObject({ file: 'jig.yml', line: 6 });

    const noName = await refusal(yaml(db(), `barclamp:
  parent: core
`, 'noname.yml'));
    expect(noName.details).toMatchObject({ file: 'noname.yml', line: 2 });
    expect(noName.message).toContain('barclamp.name is missing');

    const reserved = await refusal(yaml(db(), `barclamp:\n  name: roles\n`, 'reserved.yml'));
    expect(reserved.details).toMatchObject({ line: 2 });
    expect(reserved.message).toContain('reserved');

    const badName = await refusal(yaml(db(), `barclamp:\n  name: core\nroles:\n  - name: 9lives\n    jig: noop\n`, 'name.yml'));
    expect(badName.details).toMatchObject({ line: 4 });

    const noParent = await refusal(yaml(db(), `barclamp:\n  name: orphan\n  parent: nobody\n`, 'orphan.yml'));
    expect(noParent.details).toMatchObject({ line: 3 });
  });

  it('imports a plain object document (API form) and reports lookups with a hint', async () => {
    await db().transaction().execute((tx) =>
      importBarclampDoc(tx, {
        barclamp: { name: 'core', source_path: '/opt/core' },
        jigs: [{ name: 'noop', class: 'NoopJig' }],
        roles: [{ name: 'plain-role', jig: 'noop', timeout: 90, type: 'PlainRole', flags: ['milestone'] }],
      }, { mode: 'development' }));
    const role = await requireRole(db(), 'plain-role');
    expect(role).toMatchObject({ timeout: 90, type: 'PlainRole', milestone: true, implicit: false, template: {} });
    expect((await requireBarclamp(db(), 'core')).source_path).toBe('/opt/core');
    expect(await getRole(db(), role.id)).toMatchObject({ name: 'plain-role' });
    expect(await getRole(db(), String(role.id))).toMatchObject({ name: 'plain-role' });
    const err = await refusal(requireRole(db(), 'plain-rol'));
    expect(err.code).toBe('NOT_FOUND');
    expect(err.message).toContain("did you mean 'plain-role'?");
  });
}, 'bc');
