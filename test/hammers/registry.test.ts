import os from 'node:os';
import { describe, expect, it } from 'vitest';
import { HammerRegistry } from '../../src/hammers/index.js';
import { createLocalHammerFactory } from '../../src/hammers/local.js';
import { createSimHammerFactory } from '../../src/hammers/sim.js';

describe('hammer registry', () => {
  it('returns registered factories by name', () => {
    const local = createLocalHammerFactory();
    const sim = createSimHammerFactory(os.tmpdir());
    const reg = new HammerRegistry().add(sim).add(local);
    expect(reg.get('local')).toBe(local);
    expect(reg.get('sim')).toBe(sim);
    expect(reg.has('ssh')).toBe(false);
    expect(reg.names()).toEqual(['local', 'sim']);
  });

  it('names the known hammers when one is missing', () => {
    const reg = new HammerRegistry().add(createLocalHammerFactory()).add(createSimHammerFactory(os.tmpdir()));
    expect(() => reg.get('ssh')).toThrow(/hammer 'ssh' not found; known hammers: local, sim/);
    expect(() => new HammerRegistry().get('ssh')).toThrow(/no hammers are registered/);
  });

  it('refuses a second factory with the same name', () => {
    const reg = new HammerRegistry().add(createLocalHammerFactory());
    expect(() => reg.add(createLocalHammerFactory())).toThrow(/already registered/);
  });
});
