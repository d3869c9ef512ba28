/**
 * A tar archive built in memory, for jigs that ship a run's files to the node in one stream
 * (`tar -x` on the node's stdin) instead of one copy per file. Writes POSIX ustar, with a pax
 * `path` record for names that do not fit; regular files and directories only. No node access.
 */
import { readFile, readdir, stat } from 'node:fs/promises';
import path from 'node:path';

export interface TarEntry {
  /** relative path inside the archive, `/`-separated, without `.`/`..` parts */
  name: string;
  /** permission bits (e.g. 0o644) */
  mode: number;
  /** the file's content; absent for a directory */
  data?: Buffer;
}

const BLOCK = 512;
/** GNU tar's default record: archives are padded to a multiple of it */
const RECORD = 20 * BLOCK;

/**
 * The entries of a local tree under `prefix` (`role/`, `role/a.sh`, …), directories before their
 * contents, with their permission bits. Symlinks are followed (as an SFTP copy does); other
 * special files are left out.
 */
export async function treeEntries(localDir: string, prefix: string): Promise<TarEntry[]> {
  const out: TarEntry[] = [];
  const walk = async (abs: string, rel: string): Promise<void> => {
    const st = await stat(abs);
    if (st.isDirectory()) {
      out.push({ name: rel, mode: st.mode & 0o7777 });
      for (const entry of (await readdir(abs)).sort()) await walk(path.join(abs, entry), `${rel}/${entry}`);
    } else if (st.isFile()) {
      out.push({ name: rel, mode: st.mode & 0o7777, data: await readFile(abs) });
    }
  };
  await walk(localDir, prefix);
  return out;
}

/** The archive of `entries`, in order, ending with the two zero blocks and padded to a record. */
export function tarArchive(entries: TarEntry[], mtime: number = Math.floor(Date.now() / 1000)): Buffer {
  const chunks: Buffer[] = [];
  for (const entry of entries) {
    const parts = entry.name.split('/');
    if (!entry.name || entry.name.startsWith('/') || parts.some((p) => p === '' || p === '.' || p === '..')) {
      throw new Error(`tar: bad entry name '${entry.name}'`);
    }
    if (entry.name.includes('\0')) throw new Error('tar: an entry name cannot contain a NUL byte');
    const dir = entry.data === undefined;
    const name = dir ? `${entry.name}/` : entry.name;
    const size = dir ? 0 : entry.data!.length;
    let headerName = name;
    if (Buffer.byteLength(name) > 100 || !/^[\x20-\x7e]*$/.test(name)) {
      const record = paxRecord('path', name);
      chunks.push(header({ name: 'PaxHeader', mode: 0o644, size: record.length, type: 'x', mtime }), padded(record));
      headerName = asciiStub(name);
    }
    chunks.push(header({ name: headerName, mode: entry.mode, size, type: dir ? '5' : '0', mtime }));
    if (!dir) chunks.push(padded(entry.data!));
  }
  chunks.push(Buffer.alloc(2 * BLOCK));
  const total = chunks.reduce((n, c) => n + c.length, 0);
  const rest = total % RECORD;
  if (rest) chunks.push(Buffer.alloc(RECORD - rest));
  return Buffer.concat(chunks);
}

// Helpers ////////////////////////////////////////////////////////////////////////////////////

function header(h: { name: string; mode: number; size: number; type: string; mtime: number }): Buffer {
  const b = Buffer.alloc(BLOCK);
  b.write(h.name, 0, 100, 'utf8');
  octal(b, 100, 8, h.mode & 0o7777);
  octal(b, 108, 8, 0); // uid
  octal(b, 116, 8, 0); // gid
  octal(b, 124, 12, h.size);
  octal(b, 136, 12, h.mtime);
  b.fill(0x20, 148, 156); // the checksum counts its own field as spaces
  b.write(h.type, 156, 1, 'ascii');
  b.write('ustar\u000000', 257, 8, 'latin1');
  let sum = 0;
  for (const byte of b) sum += byte;
  b.write(`${sum.toString(8).padStart(6, '0')}\u0000 `, 148, 8, 'latin1');
  return b;
}

function octal(b: Buffer, offset: number, width: number, value: number): void {
  const text = value.toString(8);
  if (text.length > width - 1) throw new Error(`tar: ${value} does not fit a ${width}-byte field`);
  b.write(`${text.padStart(width - 1, '0')}\u0000`, offset, width, 'latin1');
}

function padded(data: Buffer): Buffer {
  const rest = data.length % BLOCK;
  return rest ? Buffer.concat([data, Buffer.alloc(BLOCK - rest)]) : data;
}

/** `<length> key=value\n`, where the length counts the whole record, its own digits included. */
function paxRecord(key: string, value: string): Buffer {
  const body = ` ${key}=${value}\n`;
  const bodyLen = Buffer.byteLength(body);
  let len = bodyLen + 1;
  while (String(len).length + bodyLen !== len) len = String(len).length + bodyLen;
  return Buffer.from(`${len}${body}`, 'utf8');
}

/** A printable ASCII name of at most 100 bytes for the ustar header behind a pax `path` record. */
function asciiStub(name: string): string {
  return name.replace(/[^\x20-\x7e]/g, '_').slice(-99);
}
