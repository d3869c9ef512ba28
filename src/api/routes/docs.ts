/**
 * API documentation (new endpoints, not in the original): `GET /api/docs/openapi.json`, the
 * OpenAPI 3.0.3 document generated from the live route table (openapi.ts), and `GET /api/docs`,
 * a self-contained page (no external assets) that fetches that document with the visitor's
 * credentials (the session cookie, or the Basic/Digest login the browser cached for the page
 * itself) and lists it by tag: method, path, summary, parameters, request body, responses.
 * Both need authentication like every other route.
 */
import { createHash } from 'node:crypto';
import type { RoutePlugin } from '../app.js';
import { openApiDocument } from '../openapi.js';

const STYLE = `
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
header{background:#1d2330;color:#fff;padding:14px 24px}header h1{margin:0;font-size:20px}
header p{margin:4px 0 0;opacity:.8;max-width:70em}header a{color:#9cd0ff}
main{display:flex;gap:24px;padding:16px 24px}nav{min-width:170px;position:sticky;top:12px;align-self:flex-start}
nav a{display:block;padding:2px 0;color:#1d5fa8;text-decoration:none}nav a:hover{text-decoration:underline}
#filter{width:100%;box-sizing:border-box;padding:5px 8px;margin-bottom:8px;border:1px solid #c6ccd6;border-radius:4px}
section{flex:1;min-width:0}h2{margin:18px 0 6px;font-size:17px;border-bottom:1px solid #d8dce3;padding-bottom:3px}
details{background:#fff;border:1px solid #dde1e7;border-radius:4px;margin:4px 0}
summary{cursor:pointer;padding:6px 10px;display:flex;gap:10px;align-items:baseline;list-style:none}
summary::-webkit-details-marker{display:none}.m{font:bold 12px monospace;min-width:56px;text-align:center;border-radius:3px;padding:2px 4px;color:#fff}
.GET{background:#2f7dd1}.POST{background:#2e9a5b}.PUT{background:#c7831c}.PATCH{background:#8a5cc7}.DELETE{background:#c83d3d}.OTHER{background:#666}
.p{font-family:monospace;word-break:break-all}.s{color:#56606e}.body{padding:4px 12px 10px;border-top:1px solid #eef0f3}
table{border-collapse:collapse;margin:4px 0}td,th{border:1px solid #e1e4ea;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f1f3f6}code{background:#f1f3f6;padding:0 3px;border-radius:2px}.err{color:#b00020;padding:24px}
`;

const SCRIPT = `
(function () {
  var url = location.pathname.replace(/\\/+$/, '') + '/openapi.json';
  var el = function (tag, attrs, kids) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    (kids || []).forEach(function (k) { e.appendChild(typeof k === 'string' ? document.createTextNode(k) : k); });
    return e;
  };
  var resolve = function (doc, x) {
    if (!x || !x.$ref) return x;
    return x.$ref.replace(/^#\\//, '').split('/').reduce(function (o, k) { return o && o[k]; }, doc);
  };
  var table = function (head, rows) {
    return el('table', {}, [el('tr', {}, head.map(function (h) { return el('th', {}, [h]); }))].concat(rows.map(function (r) {
      return el('tr', {}, r.map(function (c) { return el('td', {}, [c]); }));
    })));
  };
  fetch(url, { credentials: 'same-origin', headers: { accept: 'application/json' } })
    .then(function (res) {
      if (!res.ok) throw new Error(res.status + ' ' + res.statusText + ' fetching ' + url);
      return res.json();
    })
    .then(function (doc) {
      document.getElementById('title').textContent = doc.info.title + ' ' + doc.info.version;
      document.getElementById('desc').textContent = doc.info.description || '';
      var nav = document.getElementById('tags'), list = document.getElementById('ops');
      var byTag = {};
      Object.keys(doc.paths).forEach(function (path) {
        Object.keys(doc.paths[path]).forEach(function (method) {
          var op = doc.paths[path][method], tag = (op.tags || ['other'])[0];
          (byTag[tag] = byTag[tag] || []).push({ path: path, method: method.toUpperCase(), op: op });
        });
      });
      Object.keys(byTag).sort().forEach(function (tag) {
        nav.appendChild(el('a', { href: '#tag-' + tag }, [tag + ' (' + byTag[tag].length + ')']));
        var group = el('div', { 'class': 'tag', 'data-tag': tag }, [el('h2', { id: 'tag-' + tag }, [tag])]);
        byTag[tag].forEach(function (o) {
          var m = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'].indexOf(o.method) >= 0 ? o.method : 'OTHER';
          var body = el('div', { 'class': 'body' });
          if (o.op.description) body.appendChild(el('p', {}, [o.op.description]));
          var params = (o.op.parameters || []).map(function (p) { return resolve(doc, p); });
          if (params.length) {
            body.appendChild(el('h4', {}, ['Parameters']));
            body.appendChild(table(['name', 'in', 'required', 'description'], params.map(function (p) {
              return [el('code', {}, [p.name]), p['in'], p.required ? 'yes' : 'no', p.description || ''];
            })));
          }
          if (o.op.requestBody) {
            body.appendChild(el('h4', {}, ['Request body']));
            body.appendChild(el('p', {}, [Object.keys(o.op.requestBody.content || {}).join(', ')]));
          }
          body.appendChild(el('h4', {}, ['Responses']));
          body.appendChild(table(['status', 'description', 'content type'], Object.keys(o.op.responses).map(function (code) {
            var r = resolve(doc, o.op.responses[code]) || {};
            return [code, r.description || '', Object.keys(r.content || {}).join(', ')];
          })));
          body.appendChild(el('p', { 'class': 's' }, [o.op.security && o.op.security.length === 0 ? 'No authentication.' : 'Authentication: Digest, Basic, bearer token or session cookie.']));
          group.appendChild(el('details', { 'data-text': (o.method + ' ' + o.path + ' ' + (o.op.summary || '')).toLowerCase() }, [
            el('summary', {}, [el('span', { 'class': 'm ' + m }, [o.method]), el('span', { 'class': 'p' }, [o.path]), el('span', { 'class': 's' }, [o.op.summary || ''])]),
            body,
          ]));
        });
        list.appendChild(group);
      });
      document.getElementById('filter').addEventListener('input', function (ev) {
        var q = ev.target.value.toLowerCase();
        Array.prototype.forEach.call(document.querySelectorAll('details'), function (d) {
          d.style.display = d.getAttribute('data-text').indexOf(q) >= 0 ? '' : 'none';
        });
        Array.prototype.forEach.call(document.querySelectorAll('.tag'), function (g) {
          var shown = Array.prototype.some.call(g.querySelectorAll('details'), function (d) { return d.style.display !== 'none'; });
          g.style.display = shown ? '' : 'none';
        });
      });
    })
    .catch(function (e) {
      document.getElementById('ops').appendChild(el('p', { 'class': 'err' }, [String(e.message || e)]));
    });
})();
`;

const sha256 = (s: string) => `'sha256-${createHash('sha256').update(s).digest('base64')}'`;

/** Inline script and style only, allowed by hash; the page may fetch from its own origin and nothing else. */
const CSP = [
  "default-src 'none'",
  `script-src ${sha256(SCRIPT)}`,
  `style-src ${sha256(STYLE)}`,
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

export const DOCS_PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>OpenCrowbar API</title><style>${STYLE}</style></head>
<body><header><h1 id="title">OpenCrowbar API</h1><p id="desc">Loading <a href="docs/openapi.json">openapi.json</a>…</p>
<p>The machine-readable document: <a href="docs/openapi.json">openapi.json</a> (OpenAPI 3.0.3).</p></header>
<main><nav><input id="filter" type="search" placeholder="filter: method, path, summary" aria-label="filter"><div id="tags"></div></nav>
<section id="ops"></section></main>
<script>${SCRIPT}</script></body></html>
`;

export const docsRoutes: RoutePlugin = (app) => {
  let cached: string | undefined;

  app.get('/api/docs/openapi.json', { config: { summary: 'The OpenAPI 3.0.3 document of this API', contentType: 'application/json' } }, async (_req, reply) => {
    // routes cannot be added once the server is ready, so the first answer is the last word
    cached ??= JSON.stringify(openApiDocument(app));
    return reply.code(200).header('content-type', 'application/json; charset=utf-8').send(cached);
  });

  app.get('/api/docs', { config: { summary: 'Browse the API documentation (HTML)', contentType: 'text/html' } }, async (_req, reply) =>
    reply
      .code(200)
      .header('content-type', 'text/html; charset=utf-8')
      .header('content-security-policy', CSP)
      .header('x-content-type-options', 'nosniff')
      .send(DOCS_PAGE));
};
