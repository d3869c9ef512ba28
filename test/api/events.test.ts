import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { storeDialects } from '../helpers/stores.js';
import { startTestApi, type TestApi } from '../helpers/api.js';

interface Frame {
  id?: number;
  event?: string;
  data?: any;
}

/** An SSE client over a real socket: fetch plus a small line parser. */
class SseClient {
  readonly frames: Frame[] = [];
  comments: string[] = [];
  status = 0;
  contentType = '';
  done: Promise<void>;
  private readonly ctl = new AbortController();
  private ready!: () => void;
  readonly opened = new Promise<void>((r) => (this.ready = r));

  constructor(url: string, headers: Record<string, string>) {
    this.done = this.run(url, headers);
  }

  private async run(url: string, headers: Record<string, string>): Promise<void> {
    try {
      const res = await fetch(url, { headers: { accept: 'text/event-stream', ...headers }, signal: this.ctl.signal });
      this.status = res.status;
      this.contentType = res.headers.get('content-type') ?? '';
      this.ready();
      const reader = res.body!.getReader();
      const decoder = new TextDecoder();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buf += decoder.decode(value, { stream: true });
        let cut: number;
        while ((cut = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, cut);
          buf = buf.slice(cut + 2);
          const frame: Frame = {};
          let hasData = false;
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) this.comments.push(line.slice(1).trim());
            else if (line.startsWith('id: ')) frame.id = Number(line.slice(4));
            else if (line.startsWith('event: ')) frame.event = line.slice(7);
            else if (line.startsWith('data: ')) {
              frame.data = JSON.parse(line.slice(6));
              hasData = true;
            }
          }
          if (hasData) this.frames.push(frame);
        }
      }
    } catch (e) {
      this.ready();
      if ((e as Error).name !== 'AbortError') throw e;
    }
  }

  stored(): Frame[] {
    return this.frames.filter((f) => f.id !== undefined);
  }

  lastId(): number {
    return this.stored().at(-1)?.id ?? 0;
  }

  async close(): Promise<void> {
    this.ctl.abort();
    await this.done.catch(() => undefined);
  }
}

async function waitFor(what: string, fn: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

for (const dialect of storeDialects()) {
  describe(`/api/v2/events (${dialect})`, () => {
    let api: TestApi;
    let base: string;
    const clients: SseClient[] = [];
    const connect = async (path: string, headers: Record<string, string> = {}) => {
      const c = new SseClient(`${base}${path}`, { ...api.authHeaders, ...headers });
      clients.push(c);
      await c.opened;
      return c;
    };
    const storedIds = async (after: number) =>
      (await api.cb.engine.db.selectFrom('events').select('id').where('id', '>', after).orderBy('id').execute()).map((r) => r.id);
    const maxId = async () => (await storedIds(0)).at(-1) ?? 0;
    const anneal = async () => {
      let last: any;
      await waitFor('the annealer to settle', async () => {
        last = await api.call('GET', '/api/v2/anneal');
        return last.status !== 202;
      });
      return last;
    };
    const simNode = async (name: string) => {
      expect((await api.call('POST', '/api/v2/nodes', { name, alive: 'true' })).status).toBe(200);
      expect((await api.call('POST', '/api/v2/hammers', { node: name, available_hammer: 'sim', username: 'root' })).status).toBe(200);
      expect((await api.call('POST', '/api/v2/node_roles', { node: name, role: 'test-client-client' })).status).toBe(200);
    };

    beforeAll(async () => {
      api = await startTestApi(dialect);
      // a slow middle role keeps the anneal going while the client is away
      await api.cb.engine.setRoleTemplate('test-client', { delay: 0.15 });
      base = await api.app.listen({ port: 0, host: '127.0.0.1' });
    });
    afterAll(async () => {
      // shutting the server down ends the streams still open (or close() would wait for them)
      const lingering = await connect('/api/v2/events');
      await api?.app.close();
      await lingering.done;
      expect(lingering.comments.some((c) => c.startsWith('events after'))).toBe(true);
      await Promise.all(clients.map((c) => c.close()));
      await api?.cleanup();
    });

    it('a client that disconnects mid-anneal and reconnects with Last-Event-ID gets every stored event exactly once', async () => {
      const start = await maxId();
      const first = await connect(`/api/v2/events?after=${start}&heartbeat=0.1`);
      expect(first.status).toBe(200);
      expect(first.contentType).toMatch(/^text\/event-stream/);

      for (const n of ['ev1', 'ev2', 'ev3']) await simNode(`${n}.example.com`);
      for (const n of ['ev1', 'ev2', 'ev3']) expect((await api.call('PUT', `/api/v2/nodes/${n}.example.com/commit`)).status).toBe(200);
      // mid-anneal: some node-role has started running (a run log line came through)
      await waitFor('the anneal to start', () => first.frames.some((f) => f.event === 'run.log'));
      await first.close();
      const seenFirst = first.stored().map((f) => f.id!);
      expect(seenFirst.length).toBeGreaterThan(0);

      // events keep coming while nobody listens
      await simNode('ev4.example.com');
      expect((await api.call('PUT', '/api/v2/nodes/ev4.example.com/commit')).status).toBe(200);
      expect((await api.call('GET', '/api/v2/anneal')).status).toBe(202);

      const second = await connect('/api/v2/events?heartbeat=0.1', { 'last-event-id': String(first.lastId()) });
      expect(second.status).toBe(200);
      expect((await anneal()).body).toEqual({ message: 'finished' });
      const end = await maxId();
      await waitFor('the second client to catch up', () => second.lastId() >= end);

      const seen = [...seenFirst, ...second.stored().map((f) => f.id!)];
      expect(new Set(seen).size).toBe(seen.length);
      expect(seen).toEqual(await storedIds(start));
      // each frame carries its stored event: id, type as the event name, payload
      const rows = await api.cb.engine.db.selectFrom('events').selectAll().where('id', '>', start).orderBy('id').execute();
      const frames = [...first.stored(), ...second.stored()];
      frames.forEach((f, i) => {
        expect(f).toEqual({ id: rows[i]!.id, event: rows[i]!.type, data: { id: rows[i]!.id, type: rows[i]!.type, payload: JSON.parse(rows[i]!.payload) } });
      });
      expect(frames.some((f) => f.event === 'node_roles')).toBe(true);
      // run log lines are live only: no id, event run.log
      const logs = [...first.frames, ...second.frames].filter((f) => f.event === 'run.log');
      expect(logs.length).toBeGreaterThan(0);
      for (const l of logs) {
        expect(l.id).toBeUndefined();
        expect(l.data).toEqual({ run_id: expect.any(Number), node_role_id: expect.any(Number), text: expect.any(String) });
      }
      expect(logs.some((l) => /TEST JIG >> Working ev\d.example.com/.test(l.data.text))).toBe(true);
      await waitFor('a heartbeat', () => second.comments.some((c) => c.startsWith('heartbeat')));
      await second.close();
    });

    it('without Last-Event-ID or ?after it starts from now; ?after=0 replays everything; ?logs=false leaves log lines out', async () => {
      const before = await maxId();
      const live = await connect('/api/v2/events?logs=false');
      const all = await connect('/api/v2/events?after=0&logs=false');
      await waitFor('the replay', () => all.lastId() >= before);
      expect(all.stored().map((f) => f.id)).toEqual(await storedIds(0));
      expect((await api.call('POST', '/api/v2/deployments', { name: 'evdep' })).status).toBe(200);
      const end = await maxId();
      await waitFor('the live event', () => live.lastId() >= end && all.lastId() >= end);
      expect(live.stored().every((f) => f.id! > before)).toBe(true);
      expect(live.stored().map((f) => f.event)).toContain('deployment.created');
      expect(live.frames.some((f) => f.event === 'run.log')).toBe(false);
      await live.close();
      await all.close();
    });

    it('refuses a bad Last-Event-ID with a vendor-typed JSON error naming it', async () => {
      const res = await fetch(`${base}/api/v2/events`, { headers: { ...api.authHeaders, 'last-event-id': 'yesterday' } });
      expect(res.status).toBe(422);
      expect(res.headers.get('content-type')).toBe('application/vnd.crowbar.error.error+json; version=2.0');
      expect(((await res.json()) as { message: string }).message).toMatch(/'Last-Event-ID' must be a stored event id/);
      const bad = await fetch(`${base}/api/v2/events?after=-1`, { headers: api.authHeaders });
      expect(bad.status).toBe(422);
      await bad.arrayBuffer();
    });
  });
}
