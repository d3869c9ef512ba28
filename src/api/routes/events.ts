/**
 * `GET /api/v2/events`: Server-Sent Events of every stored event (node-role state-change
 * batches, node, node-role, deployment and deployment-role events) plus live run log lines.
 *
 * - Stored events carry their stored id (`id:`), their type as the SSE event name, and
 *   `{"id","type","payload"}` as data. Run log lines are not stored: they come without an id,
 *   as event `run.log` with `{"run_id","node_role_id","text"}` (`?logs=false` leaves them out).
 * - Where a stream starts: after `Last-Event-ID` (the header a reconnecting EventSource sends)
 *   or `?after=<id>` (`?after=0` replays everything stored); with neither, from now on.
 * - Nothing lost, nothing twice: one cursor (the last id written) drives the stream. The bus
 *   subscription is opened before the store is replayed; a bus event is written directly only
 *   when its id is exactly cursor + 1 (so nothing can be missing before it), otherwise it only
 *   wakes a read of `eventsAfter(cursor)` from the store. Ids are handed out in commit order
 *   (store/events.ts), so the store read never skips an id that commits later. A slow poll of
 *   the store also picks up events written by other server processes sharing the database.
 * - A client that reads slowly is not buffered without bound: while the socket is backed up
 *   stored events wait in the store (the cursor stops), and run log lines are dropped (they
 *   are kept in the run's record); a comment says how many were dropped.
 * - A comment heartbeat every 15 s (`?heartbeat=<seconds>` to change it) keeps proxies from
 *   closing an idle stream.
 * Errors before the stream starts (a bad `Last-Event-ID`) are ordinary vendor-typed JSON errors.
 */
import type { ServerResponse } from 'node:http';
import type { RoutePlugin } from '../app.js';
import { InvalidError } from '../../domain/errors.js';
import type { BusEvent } from '../../engine/context.js';
import { eventsAfter, lastEventId } from '../../store/events.js';

const BATCH = 500;
const DEFAULT_HEARTBEAT_S = 15;

function parseId(raw: unknown, field: string): number | undefined {
  if (raw === undefined || raw === null || raw === '') return undefined;
  const s = String(Array.isArray(raw) ? raw[0] : raw).trim();
  if (!/^\d+$/.test(s)) throw new InvalidError(`'${field}' must be a stored event id (a non-negative integer), not ${JSON.stringify(s)}`, { field });
  return Number(s);
}

export const eventsRoutes: RoutePlugin = (app, { engine, log }) => {
  const open = new Set<ServerResponse>();
  // end open streams before the server closes, or close() would wait for them forever
  app.addHook('preClose', async () => {
    for (const res of open) res.end();
  });

  app.get<{ Querystring: { after?: string; heartbeat?: string; logs?: string } }>('/api/v2/events', async (req, reply) => {
    const header = parseId(req.headers['last-event-id'], 'Last-Event-ID');
    const after = header ?? parseId(req.query.after, 'after');
    let heartbeatS = DEFAULT_HEARTBEAT_S;
    if (req.query.heartbeat !== undefined) {
      heartbeatS = Number(req.query.heartbeat);
      if (!Number.isFinite(heartbeatS) || heartbeatS < 0.05 || heartbeatS > 300) {
        throw new InvalidError(`'heartbeat' must be a number of seconds between 0.05 and 300`, { field: 'heartbeat' });
      }
    }
    const logs = req.query.logs === undefined || !['false', '0', 'no'].includes(req.query.logs);
    let cursor = after ?? (await lastEventId(engine.db));

    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    res.socket?.setNoDelay(true);
    open.add(res);

    let closed = false;
    let backedUp = false;
    let reading = false;
    let dirty = true;
    let dropped = 0;

    const write = (chunk: string): void => {
      if (!res.write(chunk)) backedUp = true;
    };
    const writeStored = (e: { id: number; type: string; payload: unknown }): void => {
      write(`id: ${e.id}\nevent: ${e.type}\ndata: ${JSON.stringify({ id: e.id, type: e.type, payload: e.payload })}\n\n`);
      cursor = e.id;
    };

    /** Reads the store after the cursor until it is drained (or the socket backs up). */
    const pump = async (): Promise<void> => {
      if (reading || closed || backedUp) return;
      reading = true;
      try {
        while (dirty && !closed && !backedUp) {
          dirty = false;
          for (;;) {
            const batch = await eventsAfter(engine.db, cursor, BATCH);
            if (closed) return;
            for (const e of batch) if (e.id > cursor) writeStored(e);
            if (batch.length < BATCH) break;
            if (backedUp) {
              dirty = true;
              break;
            }
          }
        }
      } catch (e) {
        log.warn({ err: e }, 'event stream: reading the store failed; retrying');
        dirty = true;
        setTimeout(() => void pump(), 1000).unref();
      } finally {
        reading = false;
      }
    };

    const onEvent = (e: BusEvent): void => {
      if (closed || e.id <= cursor) return;
      if (!reading && !backedUp && e.id === cursor + 1) {
        writeStored(e);
        return;
      }
      dirty = true;
      void pump();
    };
    const onLog = (l: { runId: number; nodeRoleId: number; text: string }): void => {
      if (closed) return;
      if (backedUp) {
        dropped++;
        return;
      }
      write(`event: run.log\ndata: ${JSON.stringify({ run_id: l.runId, node_role_id: l.nodeRoleId, text: l.text })}\n\n`);
    };
    const onDrain = (): void => {
      backedUp = false;
      if (dropped) {
        write(`: ${dropped} run.log line(s) dropped while this client was not reading\n\n`);
        dropped = 0;
      }
      dirty = true;
      void pump();
    };

    engine.bus.on('event', onEvent);
    if (logs) engine.bus.on('run:log', onLog);
    res.on('drain', onDrain);
    const heartbeat = setInterval(() => {
      if (!backedUp) write(`: heartbeat ${new Date().toISOString()}\n\n`);
    }, heartbeatS * 1000);
    // other processes sharing the database do not reach this process's bus
    const poll = setInterval(() => {
      dirty = true;
      void pump();
    }, engine.caps.concurrentWriters ? 1000 : 5000);

    const close = (): void => {
      if (closed) return;
      closed = true;
      clearInterval(heartbeat);
      clearInterval(poll);
      engine.bus.off('event', onEvent);
      engine.bus.off('run:log', onLog);
      res.off('drain', onDrain);
      open.delete(res);
    };
    res.on('close', close);

    write(`retry: 2000\n: events after ${cursor}\n\n`);
    await pump();
  });
};
