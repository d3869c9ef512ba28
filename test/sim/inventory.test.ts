import { describe, expect, it } from 'vitest';
import { getPath, isObject } from '../../src/domain/json.js';
import type { Json, JsonObject } from '../../src/domain/json.js';
import { MAX_SIM_INDEX, generateInventory, simNodeName } from '../../src/sim/inventory.js';

function ohaiOf(index: number): JsonObject {
  const inv = generateInventory(index, simNodeName(index));
  expect(Object.keys(inv)).toEqual(['ohai']);
  return inv.ohai as JsonObject;
}

function obj(v: Json | undefined): JsonObject {
  if (!isObject(v)) throw new Error(`expected an object, got ${JSON.stringify(v)}`);
  return v;
}

/** MACs of a node: the keys of `lladdr` addresses of its interfaces */
function macs(ohai: JsonObject): string[] {
  const out: string[] = [];
  for (const iface of Object.values(obj(getPath(ohai, 'network/interfaces')))) {
    for (const [addr, info] of Object.entries(obj(obj(iface).addresses))) {
      if (obj(info).family === 'lladdr') out.push(addr);
    }
  }
  return out;
}

describe('simNodeName', () => {
  it('zero-pads the index so names sort, under the sim domain by default', () => {
    expect(simNodeName(1)).toBe('node-00001.sim.crowbar.local');
    expect(simNodeName(42, 'lab.example')).toBe('node-00042.lab.example');
    const names = [10, 9, 100, 1].map((i) => simNodeName(i));
    expect([...names].sort()).toEqual([1, 9, 10, 100].map((i) => simNodeName(i)));
  });
});

describe('generateInventory', () => {
  it('is deterministic for the same index and name', () => {
    expect(generateInventory(17, simNodeName(17))).toEqual(generateInventory(17, simNodeName(17)));
    expect(JSON.stringify(generateInventory(3, 'x.example'))).toBe(JSON.stringify(generateInventory(3, 'x.example')));
    expect(generateInventory(17, simNodeName(17))).not.toEqual(generateInventory(18, simNodeName(18)));
  });

  it('has the keys discovery consumers read (spec §9.3)', () => {
    for (const index of [1, 2, 3, 4, 5, 6, 7, 8, 99, 1234]) {
      const o = ohaiOf(index);
      for (const p of [
        'dmi/system/manufacturer',
        'dmi/system/product_name',
        'dmi/system/serial_number',
        'dmi/base_board/asset_tag',
        'dmi/chassis/manufacturer',
        'dmi/chassis/serial_number',
        'kernel/name',
        'kernel/release',
        'kernel/version',
        'platform',
        'platform_version',
        'lsb/description',
        'cpu/0/model_name',
      ]) {
        const v = getPath(o, p);
        expect(typeof v === 'string' && v.length > 0, `${p} of node ${index}`).toBe(true);
      }
      expect(getPath(o, 'memory/total')).toMatch(/^\d+kB$/);
      const cpu = obj(o.cpu);
      expect(cpu.total).toBeGreaterThanOrEqual(2);
      expect(cpu.real).toBeGreaterThanOrEqual(1);
      for (let i = 0; i < (cpu.total as number); i++) expect(getPath(cpu, `${i}/model_name`)).toBe(getPath(cpu, '0/model_name'));

      const blocks = obj(o.block_device);
      expect(Object.keys(blocks).length).toBeGreaterThan(0);
      for (const [dev, b] of Object.entries(blocks)) {
        expect(dev).toMatch(/^sd[a-z]$/);
        expect(obj(b)).toMatchObject({ size: expect.stringMatching(/^\d+$/), removable: expect.stringMatching(/^[01]$/) });
        expect(typeof obj(b).model).toBe('string');
        expect(typeof obj(b).vendor).toBe('string');
      }

      const disks = obj(getPath(o, 'crowbar_ohai/disks'));
      expect(disks.order).toEqual(Object.keys(blocks));
      for (const dev of Object.keys(blocks)) {
        const d = obj(disks[dev]);
        expect(d.unique_name).toMatch(/^\/dev\/disk\/by-id\//);
        expect(Array.isArray(d['by-id']) && Array.isArray(d['by-path'])).toBe(true);
        expect(typeof d.usb).toBe('boolean');
        expect(d.removable).toBe(obj(blocks[dev]).removable === '1');
      }

      const interfaces = obj(getPath(o, 'network/interfaces'));
      const detected = obj(getPath(o, 'crowbar_ohai/detected/network'));
      const eths = Object.keys(interfaces).filter((n) => n.startsWith('eth'));
      expect(eths.length).toBeGreaterThanOrEqual(2);
      expect(Object.keys(detected).sort()).toEqual(eths.sort());
      for (const eth of eths) {
        expect(obj(interfaces[eth])).toMatchObject({ type: 'eth', encapsulation: 'Ethernet' });
        const nic = obj(detected[eth]);
        expect(nic.path).toMatch(/^[0-9a-f]{4}:[0-9a-f]{2}(\/[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7])+$/);
        const speeds = nic.speeds as string[];
        expect(speeds.length).toBeGreaterThan(0);
        const rank = (s: string) => ({ '10g': 4, '1g': 3, '100m': 2, '10m': 1 })[s] ?? 0;
        expect(speeds.every((s) => rank(s) > 0)).toBe(true);
        expect([...speeds].sort((a, b) => rank(b) - rank(a))).toEqual(speeds);
      }
      expect(macs(o)).toHaveLength(eths.length);
      for (const mac of macs(o)) expect(mac).toMatch(/^([0-9A-F]{2}:){5}[0-9A-F]{2}$/);
    }
  });

  it('gives unique MACs and serial numbers across 1000 nodes, from several server models', () => {
    const seenMacs = new Set<string>();
    const serials = new Set<string>();
    const models = new Set<string>();
    let macCount = 0;
    for (let i = 1; i <= 1000; i++) {
      const o = ohaiOf(i);
      for (const m of macs(o)) {
        seenMacs.add(m);
        macCount++;
      }
      serials.add(getPath(o, 'dmi/system/serial_number') as string);
      models.add(getPath(o, 'dmi/system/product_name') as string);
    }
    expect(seenMacs.size).toBe(macCount);
    expect(serials.size).toBe(1000);
    expect(models.size).toBeGreaterThanOrEqual(5);
  });

  it('keeps MACs unique at the top of the index range, and refuses indexes beyond it', () => {
    const a = macs(ohaiOf(MAX_SIM_INDEX));
    const b = macs(ohaiOf(MAX_SIM_INDEX - 1));
    const c = macs(ohaiOf(0));
    expect(new Set([...a, ...b, ...c]).size).toBe(a.length + b.length + c.length);
    expect(() => generateInventory(MAX_SIM_INDEX + 1, 'x')).toThrow(RangeError);
    expect(() => generateInventory(-1, 'x')).toThrow(RangeError);
    expect(() => generateInventory(1.5, 'x')).toThrow(RangeError);
  });

  it('records the node name as ohai hostname and fqdn', () => {
    const o = ohaiOf(5);
    expect(o).toMatchObject({ hostname: 'node-00005', fqdn: 'node-00005.sim.crowbar.local', domain: 'sim.crowbar.local' });
  });
});
