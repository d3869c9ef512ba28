/**
 * A whole Crowbar (store, engine, annealer) for scenario tests, on SQLite in a temp data dir or
 * on PostgreSQL in a fresh schema, with the built-in barclamps imported. Test-jig delays are
 * zeroed unless asked otherwise so scenarios run at the store's speed.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { dropSchema } from '../../src/store/db.js';
import { pino } from 'pino';
import { compileConfig, type CrowbarConfig } from '../../src/config.js';
import { startCrowbar, type Crowbar } from '../../src/main.js';
import type { TestDialect } from './stores.js';

export interface TestCrowbar extends Crowbar {
  dataDir: string;
  cleanup(): Promise<void>;
}

export async function startTestCrowbar(
  dialect: TestDialect,
  o: { dev?: boolean; anneal?: boolean; admin?: boolean; keepDelays?: boolean; config?: Partial<CrowbarConfig> } = {},
): Promise<TestCrowbar> {
  const dataDir = mkdtempSync(join(tmpdir(), 'crowbar-test-'));
  const schema = dialect === 'postgres' ? `cb_${randomBytes(6).toString('hex')}` : undefined;
  const config = compileConfig({
    dataDir,
    databaseUrl: dialect === 'postgres' ? process.env['DATABASE_URL'] : undefined,
    pgSchema: schema,
    dev: o.dev ?? true,
    tickMs: 200,
    adminName: 'admin.crowbar.test',
    ...o.config,
  }, {});
  const cb = await startCrowbar(config, { anneal: false, noAdmin: o.admin === false, log: pino({ level: 'silent' }) });
  if (!o.keepDelays) {
    const roles = await cb.engine.db.selectFrom('roles').select('name').where('name', 'like', 'test-%').execute();
    for (const r of roles) await cb.engine.setRoleTemplate(r.name, { delay: 0 });
  }
  if (o.anneal !== false) await cb.annealer.start();
  return Object.assign(cb, {
    dataDir,
    async cleanup() {
      await cb.close();
      if (schema) {
        await dropSchema(process.env['DATABASE_URL']!, schema);
      }
      rmSync(dataDir, { recursive: true, force: true });
    },
  });
}
