/**
 * Discovery inventory for simulated nodes: what ohai plus the crowbar ohai plugin would report
 * (spec §9.3), under a top-level `ohai` key, for a handful of real server models. Deterministic:
 * the same index and name always give the same inventory; MACs and serials derive from the index,
 * so they are unique across nodes. Pure functions, no I/O.
 */
import type { Json, JsonObject } from '../domain/json.js';

/** Largest node index with guaranteed-unique MACs (24 MAC bits = index × 8 NIC slots). */
export const MAX_SIM_INDEX = 0x1fffff;

/** `simNodeName(1)` is `node-00001.sim.crowbar.local`; zero-padded so names sort by index. */
export function simNodeName(index: number, domain = 'sim.crowbar.local'): string {
  return `node-${String(index).padStart(5, '0')}.${domain}`;
}

// Hardware profiles ////////////////////////////////////////////////////////////////////////

interface CpuSpec {
  modelName: string;
  model: number;
  stepping: number;
  mhz: number;
  cacheKb: number;
  sockets: number;
  coresPerSocket: number;
  threadsPerCore: number;
}

interface NicSpec {
  /** PCI path below `/sys/devices/pci`, as the crowbar ohai plugin reports it */
  path: string;
  /** fastest first */
  speeds: string[];
  /** the vendor's MAC prefix */
  oui: string;
}

type DiskBus = 'raid' | 'ata' | 'usb';

interface DiskSpec {
  vendor: string;
  model: string;
  rev: string;
  sizeGb: number;
  bus: DiskBus;
  rotational: boolean;
  /** by-path name of the controller port (`pci-0000:03:00.0-scsi-0:2:0:0`) */
  byPath: string;
}

interface Profile {
  manufacturer: string;
  productName: string;
  family: string;
  board: { manufacturer: string; product: string };
  chassisType: string;
  bios: { vendor: string; version: string; releaseDate: string };
  serialPrefix: string;
  serialLength: number;
  cpu: CpuSpec;
  memoryGib: number[];
  /** the first `minDisks` are always present; the rest appear on some nodes */
  disks: DiskSpec[];
  minDisks: number;
  nics: NicSpec[];
  /** an internal USB/SD boot device (removable) on some nodes */
  usb?: DiskSpec;
}

const BCM_10G = ['10g', '1g'];
const GBE = ['1g', '100m', '10m'];

const DELL_OUI = 'B8:2A:72';
const INTEL_OUI = 'A0:36:9F';

const DELL_IDSDM: DiskSpec = {
  vendor: 'Dell',
  model: 'Internal Dual SD',
  rev: '1.0',
  sizeGb: 16,
  bus: 'usb',
  rotational: false,
  byPath: 'pci-0000:00:1d.0-usb-0:1.1:1.0-scsi-0:0:0:0',
};

const PROFILES: readonly Profile[] = [
  {
    manufacturer: 'Dell Inc.',
    productName: 'PowerEdge R620',
    family: 'Not Specified',
    board: { manufacturer: 'Dell Inc.', product: '0KCKR5' },
    chassisType: 'Rack Mount Chassis',
    bios: { vendor: 'Dell Inc.', version: '2.5.4', releaseDate: '01/22/2016' },
    serialPrefix: '',
    serialLength: 7,
    cpu: {
      modelName: 'Intel(R) Xeon(R) CPU E5-2630 0 @ 2.30GHz',
      model: 45,
      stepping: 7,
      mhz: 2300,
      cacheKb: 15360,
      sockets: 2,
      coresPerSocket: 6,
      threadsPerCore: 2,
    },
    memoryGib: [64, 128],
    disks: [
      raid('DELL', 'PERC H710 Mini', '3.13', 599, 'pci-0000:03:00.0-scsi-0:2:0:0'),
      raid('DELL', 'PERC H710 Mini', '3.13', 1799, 'pci-0000:03:00.0-scsi-0:2:1:0'),
    ],
    minDisks: 1,
    nics: [
      { path: '0000:00/0000:00:01.0/0000:02:00.0', speeds: GBE, oui: DELL_OUI },
      { path: '0000:00/0000:00:01.0/0000:02:00.1', speeds: GBE, oui: DELL_OUI },
      { path: '0000:00/0000:00:01.1/0000:01:00.0', speeds: BCM_10G, oui: DELL_OUI },
      { path: '0000:00/0000:00:01.1/0000:01:00.1', speeds: BCM_10G, oui: DELL_OUI },
    ],
  },
  {
    manufacturer: 'Dell Inc.',
    productName: 'PowerEdge R720',
    family: 'Not Specified',
    board: { manufacturer: 'Dell Inc.', product: '0X3D66' },
    chassisType: 'Rack Mount Chassis',
    bios: { vendor: 'Dell Inc.', version: '2.5.4', releaseDate: '01/22/2016' },
    serialPrefix: '',
    serialLength: 7,
    cpu: {
      modelName: 'Intel(R) Xeon(R) CPU E5-2650 v2 @ 2.60GHz',
      model: 62,
      stepping: 4,
      mhz: 2600,
      cacheKb: 20480,
      sockets: 2,
      coresPerSocket: 8,
      threadsPerCore: 2,
    },
    memoryGib: [128, 256],
    disks: [
      raid('DELL', 'PERC H710P', '3.13', 599, 'pci-0000:03:00.0-scsi-0:2:0:0'),
      raid('DELL', 'PERC H710P', '3.13', 3998, 'pci-0000:03:00.0-scsi-0:2:1:0'),
      raid('DELL', 'PERC H710P', '3.13', 3998, 'pci-0000:03:00.0-scsi-0:2:2:0'),
    ],
    minDisks: 2,
    nics: [
      { path: '0000:00/0000:00:01.0/0000:02:00.0', speeds: GBE, oui: DELL_OUI },
      { path: '0000:00/0000:00:01.0/0000:02:00.1', speeds: GBE, oui: DELL_OUI },
      { path: '0000:00/0000:00:01.1/0000:01:00.0', speeds: ['10g', '1g', '100m'], oui: DELL_OUI },
      { path: '0000:00/0000:00:01.1/0000:01:00.1', speeds: ['10g', '1g', '100m'], oui: DELL_OUI },
    ],
    usb: DELL_IDSDM,
  },
  {
    manufacturer: 'Dell Inc.',
    productName: 'PowerEdge R730',
    family: 'Not Specified',
    board: { manufacturer: 'Dell Inc.', product: '072T6D' },
    chassisType: 'Rack Mount Chassis',
    bios: { vendor: 'Dell Inc.', version: '2.4.3', releaseDate: '01/17/2017' },
    serialPrefix: '',
    serialLength: 7,
    cpu: {
      modelName: 'Intel(R) Xeon(R) CPU E5-2680 v3 @ 2.50GHz',
      model: 63,
      stepping: 2,
      mhz: 2500,
      cacheKb: 30720,
      sockets: 2,
      coresPerSocket: 12,
      threadsPerCore: 2,
    },
    memoryGib: [256, 384],
    disks: [
      raid('DELL', 'PERC H730 Mini', '4.27', 479, 'pci-0000:02:00.0-scsi-0:2:0:0'),
      raid('DELL', 'PERC H730 Mini', '4.27', 7999, 'pci-0000:02:00.0-scsi-0:2:1:0'),
    ],
    minDisks: 2,
    nics: [
      { path: '0000:00/0000:00:01.0/0000:01:00.0', speeds: ['10g', '1g'], oui: DELL_OUI },
      { path: '0000:00/0000:00:01.0/0000:01:00.1', speeds: ['10g', '1g'], oui: DELL_OUI },
      { path: '0000:00/0000:00:03.0/0000:04:00.0', speeds: GBE, oui: DELL_OUI },
      { path: '0000:00/0000:00:03.0/0000:04:00.1', speeds: GBE, oui: DELL_OUI },
    ],
    usb: DELL_IDSDM,
  },
  {
    manufacturer: 'HP',
    productName: 'ProLiant DL360 Gen9',
    family: 'ProLiant',
    board: { manufacturer: 'HP', product: 'ProLiant DL360 Gen9' },
    chassisType: 'Rack Mount Chassis',
    bios: { vendor: 'HP', version: 'P89', releaseDate: '10/21/2019' },
    serialPrefix: 'MXQ',
    serialLength: 10,
    cpu: {
      modelName: 'Intel(R) Xeon(R) CPU E5-2620 v3 @ 2.40GHz',
      model: 63,
      stepping: 2,
      mhz: 2400,
      cacheKb: 15360,
      sockets: 2,
      coresPerSocket: 6,
      threadsPerCore: 2,
    },
    memoryGib: [64, 128],
    disks: [
      raid('HP', 'LOGICAL VOLUME', '6.60', 299, 'pci-0000:03:00.0-scsi-0:1:0:0'),
      raid('HP', 'LOGICAL VOLUME', '6.60', 1199, 'pci-0000:03:00.0-scsi-0:1:0:1'),
    ],
    minDisks: 1,
    nics: [
      { path: '0000:00/0000:00:02.0/0000:04:00.0', speeds: ['10g'], oui: 'EC:B1:D7' },
      { path: '0000:00/0000:00:02.0/0000:04:00.1', speeds: ['10g'], oui: 'EC:B1:D7' },
      { path: '0000:00/0000:00:1c.0/0000:03:00.0', speeds: GBE, oui: 'EC:B1:D7' },
      { path: '0000:00/0000:00:1c.0/0000:03:00.1', speeds: GBE, oui: 'EC:B1:D7' },
      { path: '0000:00/0000:00:1c.0/0000:03:00.2', speeds: GBE, oui: 'EC:B1:D7' },
      { path: '0000:00/0000:00:1c.0/0000:03:00.3', speeds: GBE, oui: 'EC:B1:D7' },
    ],
  },
  {
    manufacturer: 'Supermicro',
    productName: 'SYS-1028R-WTR',
    family: 'SMC X10',
    board: { manufacturer: 'Supermicro', product: 'X10DRW-i' },
    chassisType: 'Main Server Chassis',
    bios: { vendor: 'American Megatrends Inc.', version: '3.1', releaseDate: '06/09/2018' },
    serialPrefix: 'S',
    serialLength: 11,
    cpu: {
      modelName: 'Intel(R) Xeon(R) CPU E5-2630 v3 @ 2.40GHz',
      model: 63,
      stepping: 2,
      mhz: 2400,
      cacheKb: 20480,
      sockets: 2,
      coresPerSocket: 8,
      threadsPerCore: 2,
    },
    memoryGib: [64, 128, 256],
    disks: [
      ata('SAMSUNG MZ7LM480HCHP-00003', 'GXT3003Q', 480, false, 'pci-0000:00:1f.2-ata-1'),
      ata('SAMSUNG MZ7LM480HCHP-00003', 'GXT3003Q', 480, false, 'pci-0000:00:1f.2-ata-2'),
      ata('HGST HUS726040ALE610', 'APGNT907', 4000, true, 'pci-0000:00:1f.2-ata-3'),
      ata('HGST HUS726040ALE610', 'APGNT907', 4000, true, 'pci-0000:00:1f.2-ata-4'),
    ],
    minDisks: 2,
    nics: [
      { path: '0000:00/0000:00:03.0/0000:02:00.0', speeds: ['10g', '1g'], oui: INTEL_OUI },
      { path: '0000:00/0000:00:03.0/0000:02:00.1', speeds: ['10g', '1g'], oui: INTEL_OUI },
      { path: '0000:00/0000:00:1c.0/0000:05:00.0', speeds: GBE, oui: '0C:C4:7A' },
      { path: '0000:00/0000:00:1c.0/0000:05:00.1', speeds: GBE, oui: '0C:C4:7A' },
    ],
  },
  {
    manufacturer: 'Lenovo',
    productName: 'ThinkSystem SR650 -[7X06CTO1WW]-',
    family: 'ThinkSystem',
    board: { manufacturer: 'Lenovo', product: '7X06CTO1WW' },
    chassisType: 'Rack Mount Chassis',
    bios: { vendor: 'Lenovo', version: '-[IVE164M-2.90]-', releaseDate: '04/23/2020' },
    serialPrefix: 'J30',
    serialLength: 8,
    cpu: {
      modelName: 'Intel(R) Xeon(R) Gold 6130 CPU @ 2.10GHz',
      model: 85,
      stepping: 4,
      mhz: 2100,
      cacheKb: 22528,
      sockets: 2,
      coresPerSocket: 16,
      threadsPerCore: 2,
    },
    memoryGib: [192, 384],
    disks: [
      raid('Lenovo', 'RAID 930-8i-2GB', '5.06', 479, 'pci-0000:1a:00.0-scsi-0:2:0:0'),
      raid('Lenovo', 'RAID 930-8i-2GB', '5.06', 9599, 'pci-0000:1a:00.0-scsi-0:2:1:0'),
    ],
    minDisks: 2,
    nics: [
      { path: '0000:00/0000:00:1c.0/0000:3d:00.0', speeds: ['10g', '1g'], oui: '7C:D3:0A' },
      { path: '0000:00/0000:00:1c.0/0000:3d:00.1', speeds: ['10g', '1g'], oui: '7C:D3:0A' },
      { path: '0000:00/0000:00:1c.0/0000:3d:00.2', speeds: GBE, oui: '7C:D3:0A' },
      { path: '0000:00/0000:00:1c.0/0000:3d:00.3', speeds: GBE, oui: '7C:D3:0A' },
    ],
  },
];

function raid(vendor: string, model: string, rev: string, sizeGb: number, byPath: string): DiskSpec {
  return { vendor, model, rev, sizeGb, bus: 'raid', rotational: true, byPath };
}

function ata(model: string, rev: string, sizeGb: number, rotational: boolean, byPath: string): DiskSpec {
  return { vendor: 'ATA', model, rev, sizeGb, bus: 'ata', rotational, byPath };
}

const OS_RELEASES = [
  {
    platform: 'centos',
    platformVersion: '7.1.1503',
    family: 'rhel',
    lsb: { id: 'CentOS', description: 'CentOS Linux release 7.1.1503 (Core)', release: '7.1.1503', codename: 'Core' },
    kernel: { release: '3.10.0-229.el7.x86_64', version: '#1 SMP Fri Mar 6 11:36:42 UTC 2015' },
  },
  {
    platform: 'ubuntu',
    platformVersion: '14.04',
    family: 'debian',
    lsb: { id: 'Ubuntu', description: 'Ubuntu 14.04.5 LTS', release: '14.04', codename: 'trusty' },
    kernel: { release: '3.13.0-170-generic', version: '#220-Ubuntu SMP Thu May 9 12:40:49 UTC 2019' },
  },
] as const;

/** Nodes per rack: the switch port a node's NICs are cabled to. */
const RACK_SIZE = 40;

// Generation /////////////////////////////////////////////////////////////////////////////////

/** FNV-1a over the string, as a 32-bit seed. */
function hash32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** mulberry32: a small, fast, seedable PRNG; returns floats in [0, 1). */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function pick<T>(rnd: () => number, items: readonly T[]): T {
  return items[Math.floor(rnd() * items.length)]!;
}

function hex(n: number, width: number): string {
  return n.toString(16).padStart(width, '0').slice(-width);
}

/** A serial number with the index in it (so it is unique) and seeded filler for realism. */
function serialFor(p: Profile, index: number, rnd: () => number): string {
  const body = index.toString(36).toUpperCase();
  const fillLen = Math.max(0, p.serialLength - p.serialPrefix.length - body.length);
  const alphabet = '0123456789BCDFGHJKLMNPQRSTVWXYZ';
  let fill = '';
  for (let i = 0; i < fillLen; i++) fill += alphabet[Math.floor(rnd() * alphabet.length)];
  return `${p.serialPrefix}${fill}${body}`;
}

function macFor(oui: string, index: number, nic: number): string {
  const low = index * 8 + nic;
  const bytes = [(low >>> 16) & 0xff, (low >>> 8) & 0xff, low & 0xff].map((b) => hex(b, 2).toUpperCase());
  return `${oui}:${bytes.join(':')}`;
}

function uuidFor(index: number, rnd: () => number): string {
  const r = (w: number) => hex(Math.floor(rnd() * 16 ** Math.min(w, 8)), w).toUpperCase();
  return `${r(8)}-${r(4)}-4${r(3)}-${hex(8 + Math.floor(rnd() * 4), 1).toUpperCase()}${r(3)}-${hex(index, 12).toUpperCase()}`;
}

function disksFor(p: Profile, index: number, rnd: () => number) {
  const extra = p.disks.length - p.minDisks;
  const count = p.minDisks + Math.floor(rnd() * (extra + 1));
  const specs = p.disks.slice(0, count);
  if (p.usb && rnd() < 0.5) specs.push(p.usb);
  return specs.map((spec, i) => {
    const dev = `sd${String.fromCharCode(97 + i)}`;
    const wwn = `${hex(index, 8)}${hex(i, 2)}${hex(Math.floor(rnd() * 0xffffff), 6)}`;
    let byId: string[];
    if (spec.bus === 'raid') {
      byId = [`scsi-36${hex(hash32(spec.vendor), 8)}${wwn}`, `wwn-0x6${hex(hash32(spec.vendor), 8)}${wwn}`];
    } else if (spec.bus === 'ata') {
      const sn = `S${hex(index, 7).toUpperCase()}${i}`;
      byId = [`ata-${spec.model.replace(/ /g, '_')}_${sn}`, `wwn-0x5${wwn}`];
    } else {
      byId = [`usb-${spec.vendor}_${spec.model.replace(/ /g, '_')}_${hex(index, 12).toUpperCase()}-0:0`];
    }
    return { dev, spec, byId };
  });
}

/**
 * The discovery blob of simulated node `index` called `name`: `{ ohai: { dmi, kernel, platform,
 * platform_version, lsb, memory, cpu, block_device, network, crowbar_ohai, … } }`, shaped as the
 * original's ohai run stores it. The hardware model is chosen from a small table of real servers;
 * indexes 0..{@link MAX_SIM_INDEX} give unique MACs and serial numbers.
 */
export function generateInventory(index: number, name: string): JsonObject {
  if (!Number.isInteger(index) || index < 0 || index > MAX_SIM_INDEX) {
    throw new RangeError(`sim node index must be an integer from 0 to ${MAX_SIM_INDEX}, got ${index}`);
  }
  const rnd = prng(hash32(`${index}|${name}`));
  const p = pick(rnd, PROFILES);
  const os = rnd() < 0.75 ? OS_RELEASES[0] : OS_RELEASES[1];
  const serial = serialFor(p, index, rnd);
  const [hostname, ...domainParts] = name.split('.');

  // memory: what the kernel reports is a little under the installed size
  const gib = pick(rnd, p.memoryGib);
  const totalKb = Math.floor(gib * 1048576 * 0.98115) - Math.floor(rnd() * 2048);
  const memory: JsonObject = {
    total: `${totalKb}kB`,
    free: `${Math.floor(totalKb * (0.9 + rnd() * 0.08))}kB`,
    swap: { total: '0kB', free: '0kB' },
  };

  const c = p.cpu;
  const logical = c.sockets * c.coresPerSocket * c.threadsPerCore;
  const cpu: JsonObject = { total: logical, real: c.sockets, cores: c.sockets * c.coresPerSocket };
  for (let i = 0; i < logical; i++) {
    const socket = i % c.sockets;
    const core = Math.floor(i / c.sockets) % c.coresPerSocket;
    cpu[String(i)] = {
      vendor_id: 'GenuineIntel',
      family: '6',
      model: String(c.model),
      model_name: c.modelName,
      stepping: String(c.stepping),
      mhz: `${c.mhz}.000`,
      cache_size: `${c.cacheKb} KB`,
      physical_id: String(socket),
      core_id: String(core),
      cores: String(c.coresPerSocket),
    };
  }

  const disks = disksFor(p, index, rnd);
  const blockDevice: JsonObject = {};
  const crowbarDisks: JsonObject = {};
  const byIdIndex: JsonObject = {};
  const byPathIndex: JsonObject = {};
  for (const { dev, spec, byId } of disks) {
    const removable = spec.bus === 'usb';
    blockDevice[dev] = {
      size: String(Math.floor((spec.sizeGb * 1e9) / 512)),
      removable: removable ? '1' : '0',
      model: spec.model,
      vendor: spec.vendor,
      rev: spec.rev,
      state: 'running',
      timeout: '30',
      rotational: spec.rotational ? '1' : '0',
      physical_block_size: '512',
      logical_block_size: '512',
    };
    for (const id of byId) byIdIndex[id] = dev;
    byPathIndex[spec.byPath] = dev;
    crowbarDisks[dev] = {
      'by-id': byId,
      'by-path': [spec.byPath],
      unique_name: `/dev/disk/by-id/${byId[0]}`,
      preferred_device_name: `/dev/disk/by-id/${byId[0]}`,
      available: true,
      usb: spec.bus === 'usb',
      removable,
    };
  }
  crowbarDisks['by-id'] = byIdIndex;
  crowbarDisks['by-path'] = byPathIndex;
  crowbarDisks.order = disks.map((d) => d.dev);

  // NICs are named in PCI order, as the kernel enumerates them
  const nics = [...p.nics].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const interfaces: JsonObject = {
    lo: {
      encapsulation: 'Loopback',
      mtu: '65536',
      flags: ['LOOPBACK', 'UP', 'LOWER_UP'],
      state: 'unknown',
      addresses: {
        '127.0.0.1': { family: 'inet', prefixlen: '8', netmask: '255.0.0.0', scope: 'Node' },
        '::1': { family: 'inet6', prefixlen: '128', scope: 'Node' },
      },
    },
  };
  const detected: JsonObject = {};
  const switchConfig: JsonObject = {};
  const rack = Math.floor(index / RACK_SIZE);
  const port = (index % RACK_SIZE) + 1;
  nics.forEach((nic, i) => {
    const ifname = `eth${i}`;
    const mac = macFor(nic.oui, index, i);
    interfaces[ifname] = {
      type: 'eth',
      number: String(i),
      encapsulation: 'Ethernet',
      mtu: '1500',
      flags: ['BROADCAST', 'MULTICAST', 'UP', 'LOWER_UP'],
      state: 'up',
      addresses: { [mac]: { family: 'lladdr' } },
    };
    detected[ifname] = { path: nic.path, speeds: [...nic.speeds] };
    // one top-of-rack switch per speed class; the node's position in the rack is the port
    const tor = nic.speeds[0] === '10g' ? 1 : 2;
    switchConfig[ifname] = {
      interface: ifname,
      mac,
      port_link: true,
      switch_name: `00:1C:73:${hex(rack >>> 8, 2)}:${hex(rack & 0xff, 2)}:${hex(tor, 2)}`.toUpperCase(),
      switch_port: port,
      switch_port_name: `Ethernet${i + 1}/${port}`,
      switch_unit: i + 1,
    };
  });

  const ohai: JsonObject = {
    hostname: hostname ?? name,
    fqdn: name,
    domain: domainParts.join('.'),
    macaddress: macFor(nics[0]!.oui, index, 0),
    os: 'linux',
    os_version: os.kernel.release,
    platform: os.platform,
    platform_version: os.platformVersion,
    platform_family: os.family,
    lsb: { ...os.lsb },
    kernel: { name: 'Linux', release: os.kernel.release, version: os.kernel.version, machine: 'x86_64', os: 'GNU/Linux' },
    dmi: {
      dmidecode_version: '2.12',
      system: {
        manufacturer: p.manufacturer,
        product_name: p.productName,
        version: 'Not Specified',
        serial_number: serial,
        uuid: uuidFor(index, rnd),
        wake_up_type: 'Power Switch',
        sku_number: 'Not Specified',
        family: p.family,
      },
      base_board: {
        manufacturer: p.board.manufacturer,
        product_name: p.board.product,
        version: 'A01',
        serial_number: p.manufacturer.startsWith('Dell')
          ? `..CN${hex(hash32(serial), 8).toUpperCase()}${hex(index, 6).toUpperCase()}.`
          : `${p.serialPrefix}MB${hex(hash32(serial), 6).toUpperCase()}${hex(index, 6).toUpperCase()}`,
        asset_tag: `CB${String(index).padStart(6, '0')}`,
      },
      chassis: {
        manufacturer: p.manufacturer,
        product_name: p.productName,
        type: p.chassisType,
        lock: 'Present',
        version: 'Not Specified',
        serial_number: serial,
        asset_tag: 'Not Specified',
        boot_up_state: 'Safe',
        power_supply_state: 'Safe',
        thermal_state: 'Safe',
        security_status: 'Unknown',
      },
      bios: { vendor: p.bios.vendor, version: p.bios.version, release_date: p.bios.releaseDate },
    },
    memory,
    cpu,
    block_device: blockDevice,
    network: { default_interface: 'eth0', interfaces },
    crowbar_ohai: {
      in_docker: false,
      detected: { network: detected },
      switch_config: switchConfig,
      disks: crowbarDisks,
    },
  };
  return { ohai: ohai as Json } as JsonObject;
}
