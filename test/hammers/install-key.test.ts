/**
 * The per-install ssh key: ssh2 sometimes generates an ed25519 key its own parser rejects
 * (~0.4% of keys), which once failed a server start. Many fresh installs must all get a usable key.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import ssh2 from 'ssh2';
import { ensureInstallKey } from '../../src/hammers/ssh.js';

describe('ensureInstallKey', () => {
  it('gives every new install a key that parses, and the same key on the next start', () => {
    const root = mkdtempSync(join(tmpdir(), 'crowbar-keys-'));
    try {
      for (let i = 0; i < 600; i++) {
        const dir = join(root, String(i));
        const key = ensureInstallKey(dir);
        expect(ssh2.utils.parseKey(key.privateKey)).not.toBeInstanceOf(Error);
        expect(key.publicKey).toMatch(/^ssh-ed25519 \S+ crowbar$/);
        if (i === 0) expect(ensureInstallKey(dir).publicKey).toBe(key.publicKey);
      }
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
