// e2e.mjs: the web application end to end, in headless Chromium driven by
// playwright-core, against a whole stack (tests/integration/test_web.sh starts
// it): sign-up, login, upload with progress, download byte for byte, replace,
// delete with confirmation, two-factor set-up and login with a code computed
// here (RFC 6238), application passwords, password change, logout; the
// security headers and no CSP violation; a login by keyboard alone.
//
// Environment: CONFIDOC_URL, CONFIDOC_CACERT (the stack's public CA), E2E_WORK
// (a private scratch directory), E2E_SCREENSHOTS (where the PNGs go).
// Prints "ok - NAME" / "not ok - NAME" per check and "N passed, N failed".
//
// TLS: Chromium trusts the stack's CA itself, as a user's browser would: the
// CA goes into an NSS store in a scratch HOME (certutil), where Chromium on
// Linux reads the user's trust anchors, so the chain and the name "localhost"
// are verified by the browser. ignoreHTTPSErrors stays false.
import { execFileSync } from "node:child_process";
import { createHmac, randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { request as httpsRequest } from "node:https";
import { createRequire } from "node:module";
import { join } from "node:path";

const require = createRequire(new URL("../../web/package.json", import.meta.url));
const { chromium } = require("playwright-core");

const URL_BASE = process.env.CONFIDOC_URL;
const CACERT = process.env.CONFIDOC_CACERT;
const WORK = process.env.E2E_WORK;
const SHOTS = process.env.E2E_SCREENSHOTS;
if (!URL_BASE || !CACERT || !WORK || !SHOTS) {
  console.log("not ok - e2e.mjs needs CONFIDOC_URL, CONFIDOC_CACERT, E2E_WORK and E2E_SCREENSHOTS");
  process.exit(1);
}

// The flags of shared/MACHINE-NOTES.md (Browsers): no sandbox as root, and
// nothing that reaches for the outside.
const CHROMIUM_FLAGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; " +
  "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

let passed = 0;
let failed = 0;
const ok = (name) => {
  passed++;
  console.log(`ok - ${name}`);
};
const notOk = (name, why) => {
  failed++;
  console.log(`not ok - ${name}${why ? ` (${why})` : ""}`);
};
const check = (name, cond, why) => (cond ? ok(name) : notOk(name, why));
const eq = (name, got, want) => check(name, got === want, `got ${JSON.stringify(got)}, expected ${JSON.stringify(want)}`);
const t0 = Date.now();
const section = (name) => console.log(`# ${name} [${Math.round((Date.now() - t0) / 1000)}s]`);

// ---------------------------------------------------------------- TOTP (RFC 6238)

function base32Decode(s) {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = 0;
  let value = 0;
  const out = [];
  for (const c of s.replace(/=+$/, "").toUpperCase()) {
    const v = alphabet.indexOf(c);
    if (v < 0) throw new Error(`not base32: ${c}`);
    value = (value << 5) | v;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}

/** The 6-digit code of time step `step` (HMAC-SHA1, 30 s steps). */
function totp(secret, step) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(step));
  const h = createHmac("sha1", base32Decode(secret)).update(counter).digest();
  const off = h[h.length - 1] & 0x0f;
  const bin = ((h[off] & 0x7f) << 24) | (h[off + 1] << 16) | (h[off + 2] << 8) | h[off + 3];
  return String(bin % 1_000_000).padStart(6, "0");
}
const stepNow = () => Math.floor(Date.now() / 1000 / 30);
// RFC 6238, appendix B (SHA-1, T = 59 s: step 1, 94287082; its last 6 digits).
const RFC6238_OK = totp("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", 1) === "287082";

/** Waits until the time step is past `used` (each code is accepted once). */
async function nextStep(used) {
  while (stepNow() <= used) await new Promise((r) => setTimeout(r, 250));
  return stepNow();
}

// ---------------------------------------------------------------- HTTP

/** A GET from node itself, verifying the stack's CA (Playwright's own
 * request client knows only its built-in roots): {status, headers}. */
function nodeGet(url, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { ca: readFileSync(CACERT), headers }, (res) => {
      res.resume();
      res.on("end", () => resolve({ status: res.statusCode, headers: res.headers }));
    });
    req.on("error", reject);
    req.end();
  });
}
const basicAuth = (u, p) => ({ Authorization: "Basic " + Buffer.from(`${u}:${p}`).toString("base64") });

// ---------------------------------------------------------------- browser

function trustStore() {
  const home = join(WORK, "home");
  const db = join(home, ".pki", "nssdb");
  mkdirSync(db, { recursive: true, mode: 0o700 });
  execFileSync("certutil", ["-d", `sql:${db}`, "-N", "--empty-password"], { stdio: "pipe" });
  execFileSync("certutil", ["-d", `sql:${db}`, "-A", "-t", "C,,", "-n", "confidoc test CA", "-i", CACERT], {
    stdio: "pipe",
  });
  return home;
}

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  headless: true,
  args: CHROMIUM_FLAGS,
  env: { ...process.env, HOME: trustStore() },
  timeout: 60_000,
});
const context = await browser.newContext({
  ignoreHTTPSErrors: false,
  acceptDownloads: true,
  viewport: { width: 1100, height: 800 },
  locale: "en-GB",
  timezoneId: "UTC",
});
context.setDefaultTimeout(20_000);
// Every CSP violation the page sees, reported by the page itself (the init
// script is the browser's, not subject to the page's policy).
await context.addInitScript(() => {
  window.__csp = [];
  document.addEventListener("securitypolicyviolation", (e) =>
    window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`),
  );
});
const page = await context.newPage();
const consoleErrors = [];
page.on("console", (m) => {
  if (m.type() === "error" || /Content Security Policy/i.test(m.text())) consoleErrors.push(m.text());
});
page.on("pageerror", (e) => consoleErrors.push(`pageerror: ${e.message}`));

const status = page.locator("#status");
async function statusHas(text, name) {
  try {
    await page.waitForFunction(
      (t) => (document.getElementById("status")?.textContent ?? "").includes(t),
      text,
      { timeout: 20_000 },
    );
    ok(name);
  } catch {
    notOk(name, `status is ${JSON.stringify(await status.textContent())}`);
  }
}
/** locator.count() once it equals n (polled for up to 10 s: lists load after their heading). */
async function countOf(locator, n) {
  let c = await locator.count();
  for (let i = 0; i < 100 && c !== n; i++) {
    await new Promise((r) => setTimeout(r, 100));
    c = await locator.count();
  }
  return c;
}
const shot = async (name) => page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
const USER = `web${randomBytes(4).toString("hex")}`;
let password = "correct horse battery 1";

try {
  check("the test's TOTP gives RFC 6238's vector", RFC6238_OK);
  section("the page and its headers");
  const resp = await page.goto(`${URL_BASE}/`);
  eq("/ redirects to /app/", page.url(), `${URL_BASE}/app/`);
  const h = resp.headers();
  eq("index.html has the Content-Security-Policy", h["content-security-policy"], CSP);
  eq("nosniff", h["x-content-type-options"], "nosniff");
  eq("no referrer", h["referrer-policy"], "no-referrer");
  eq("index.html is not cached unchecked", h["cache-control"], "no-cache");
  const proto = await page.evaluate(() => performance.getEntriesByType("navigation")[0].nextHopProtocol);
  eq("the page came over HTTP/2", proto, "h2");
  const assets = await page.evaluate(() =>
    [...document.querySelectorAll("script[src], link[rel=stylesheet]")].map((e) => e.src || e.href),
  );
  for (const a of assets) {
    const r = await nodeGet(a);
    eq(`${a.replace(/.*\//, "")} is cached for a year`, r.headers["cache-control"], "public, max-age=31536000, immutable");
  }
  check(
    "no inline script or style in the page",
    await page.evaluate(() => document.querySelectorAll("script:not([src]), style, [style]").length === 0),
  );
  const unnamed = await page.evaluate(() =>
    [...document.querySelectorAll("button, input, select, textarea, progress, a[href]")]
      .filter((e) => e.getAttribute("aria-hidden") !== "true")
      .filter((e) => {
        const labelled = "labels" in e && e.labels && e.labels.length > 0;
        return !labelled && !e.getAttribute("aria-label") && !(e.textContent ?? "").trim();
      })
      .map((e) => e.id || e.outerHTML.slice(0, 60)),
  );
  eq("every control has an accessible name", unnamed.join(", "), "");
  await page.locator("#login-username").waitFor();
  await shot("login");

  section("sign-up");
  await page.getByRole("button", { name: "Create an account" }).click();
  await page.locator("#signup-username").fill(USER);
  await page.locator("#signup-password").fill(password);
  await page.locator("#signup-password2").fill(password);
  await page.getByRole("button", { name: "Create account" }).click();
  const code = page.getByLabel("Recovery code", { exact: true });
  await code.waitFor();
  const recovery = (await code.textContent()) ?? "";
  check("the recovery code is shown", recovery.length >= 16, `got ${JSON.stringify(recovery)}`);
  check(
    "with the warning that losing password and code loses the documents",
    (await page.locator("#recovery").textContent()).includes("your documents are lost"),
  );
  const cont = page.getByRole("button", { name: "Continue to log in" });
  check("continuing needs the acknowledgement", await cont.isDisabled());
  await shot("signup-recovery-code");
  await page.getByLabel("I have stored the recovery code somewhere safe").check();
  await cont.click();
  check("the recovery code is gone from the page", !(await page.content()).includes(recovery));

  section("login");
  eq("the login form has the new username", await page.locator("#login-username").inputValue(), USER);
  await page.locator("#login-password").fill("wrong password 123");
  await page.getByRole("button", { name: "Log in" }).click();
  await statusHas("Incorrect username or password", "a wrong password is refused");
  await page.locator("#login-password").fill(password);
  await page.getByRole("button", { name: "Log in" }).click();
  await page.getByRole("heading", { name: "Documents", exact: true }).waitFor();
  ok("login opens the documents");
  const cookies = await context.cookies();
  const session = cookies.find((c) => c.name === "__Host-confidoc_session");
  check(
    "the session cookie is HttpOnly, Secure, SameSite=Strict",
    session && session.httpOnly && session.secure && session.sameSite === "Strict",
    JSON.stringify(session),
  );

  section("upload with progress");
  const big = randomBytes(3 * 1024 * 1024 + 17);
  const bigPath = join(WORK, "report.bin");
  writeFileSync(bigPath, big);
  const progressSeen = page.evaluate(
    () =>
      new Promise((resolve) => {
        const bar = document.getElementById("upload-progress");
        const seen = [];
        const t = setInterval(() => {
          seen.push([bar.value, bar.max]);
          if (bar.max > 1 && bar.value === bar.max) {
            clearInterval(t);
            resolve(seen);
          }
        }, 5);
        setTimeout(() => {
          clearInterval(t);
          resolve(seen);
        }, 20_000);
      }),
  );
  await page.getByLabel("Upload", { exact: true }).setInputFiles(bigPath);
  await statusHas("report.bin stored as document 0", "the upload is stored under the next free id (0)");
  const seen = await progressSeen;
  const last = seen[seen.length - 1];
  check("the progress bar reached its max", last && last[0] === last[1] && last[1] === big.length, JSON.stringify(last));
  const bar = page.getByRole("progressbar", { name: "Upload progress" });
  eq("the progress bar has an accessible name", await bar.count(), 1);
  await shot("upload-done");
  const row0 = page.locator('tr[data-record-id="0"]');
  eq("the list shows the document", await row0.locator("th").textContent(), "Document 0");
  eq("with its size", await row0.locator("td[data-bytes]").getAttribute("data-bytes"), String(big.length));
  eq("and its type", await row0.locator("td").first().textContent(), "application/octet-stream");
  check("and its dates", (await row0.locator("time").count()) === 2);

  section("drag and drop");
  const dt = await page.evaluateHandle(() => {
    const d = new DataTransfer();
    d.items.add(new File(["dropped text\n"], "note.txt", { type: "text/plain" }));
    return d;
  });
  await page.dispatchEvent("#dropzone", "drop", { dataTransfer: dt });
  await statusHas("note.txt stored as document 1", "a dropped file takes the next id (1)");
  await shot("documents");

  section("download");
  async function download(id) {
    const [dl] = await Promise.all([
      page.waitForEvent("download"),
      page.getByRole("button", { name: `Download document ${id}` }).click(),
    ]);
    const p = join(WORK, `download-${id}-${Date.now()}`);
    await dl.saveAs(p);
    return { bytes: readFileSync(p), name: dl.suggestedFilename() };
  }
  const d0 = await download(0);
  check("the download is the uploaded file, byte for byte", Buffer.compare(d0.bytes, big) === 0, `${d0.bytes.length} bytes`);
  eq("with the service's file name", d0.name, "document-0");

  section("replace");
  const small = Buffer.from("the second version\n");
  const smallPath = join(WORK, "v2.txt");
  writeFileSync(smallPath, small);
  const [chooser] = await Promise.all([
    page.waitForEvent("filechooser"),
    page.getByRole("button", { name: "Replace document 0" }).click(),
  ]);
  await chooser.setFiles(smallPath);
  await statusHas("v2.txt stored as document 0: version 2", "replace stores version 2 under the same id");
  const d0b = await download(0);
  check("the download is the new version", Buffer.compare(d0b.bytes, small) === 0);

  section("delete with confirmation");
  const dialog = page.locator("#confirm-dialog");
  await page.getByRole("button", { name: "Delete document 1" }).click();
  await dialog.waitFor({ state: "visible" });
  ok("delete asks in a dialog");
  await page.keyboard.press("Escape");
  await dialog.waitFor({ state: "hidden" });
  ok("Escape closes the dialog");
  eq("and nothing is deleted", await page.locator('tr[data-record-id="1"]').count(), 1);
  await page.getByRole("button", { name: "Delete document 1" }).click();
  await dialog.getByRole("button", { name: "Delete" }).click();
  await statusHas("Document 1 deleted.", "confirming deletes");
  eq("the list no longer has it", await countOf(page.locator('tr[data-record-id="1"]'), 0), 0);

  section("two-factor set-up");
  await page.getByRole("button", { name: "Two-factor login", exact: true }).click();
  await page.getByRole("button", { name: "Set up two-factor login" }).click();
  const qr = page.getByRole("img", { name: "QR code of the two-factor secret" });
  await qr.waitFor();
  const src = (await qr.getAttribute("src")) ?? "";
  check("the QR code is an image of a data: URL", src.startsWith("data:image/svg+xml;base64,"));
  check("its SVG is no part of the page", (await page.locator("svg").count()) === 0);
  check(
    "the image decodes",
    await qr.evaluate((img) => img.decode().then(() => img.naturalWidth > 0, () => false)),
  );
  const secret = ((await page.getByLabel("Two-factor secret").textContent()) ?? "").trim();
  check("the secret is shown", /^[A-Z2-7]{16,}$/.test(secret), secret);
  await shot("twofactor-setup");
  let used = stepNow();
  await page.getByLabel("Code from the app").fill(totp(secret, used));
  await page.getByRole("button", { name: "Confirm" }).click();
  await statusHas("Two-factor login is on", "a computed code turns two-factor login on");
  await page.getByLabel("Current one-time code").fill(totp(secret, used) === "000000" ? "111111" : "000000");
  await page.getByRole("button", { name: "Turn off two-factor login" }).click();
  await statusHas("Invalid one-time code", "turning it off with a wrong code is refused");

  section("application passwords");
  await page.getByRole("button", { name: "Application passwords", exact: true }).click();
  await page.getByLabel("Name", { exact: true }).fill("backup script");
  await page.getByRole("button", { name: "Create application password" }).click();
  const apw = page.getByLabel("New application password", { exact: true });
  await apw.waitFor();
  const apwValue = ((await apw.textContent()) ?? "").trim();
  check("the new password is shown once", apwValue.length >= 16, apwValue);
  const apRow = page.locator("#apppasswords-body tr", { hasText: "backup script" });
  eq("the list has it", await countOf(apRow, 1), 1);
  await shot("app-passwords");
  // It works for Basic authentication, without the one-time code.
  const basic = await nodeGet(`${URL_BASE}/users/me`, basicAuth(USER, apwValue));
  eq("the application password authenticates without a code", basic.status, 200);
  await page.getByRole("button", { name: "Done" }).click();
  check("Done removes it from the page", !(await page.content()).includes(apwValue));
  await apRow.getByRole("button", { name: "Revoke backup script" }).click();
  await dialog.getByRole("button", { name: "Revoke" }).click();
  await statusHas("revoked", "revoke asks, then revokes");
  eq("the list is empty", await countOf(page.locator("#apppasswords-body tr"), 0), 0);
  const after = await nodeGet(`${URL_BASE}/users/me`, basicAuth(USER, apwValue));
  eq("a revoked application password no longer works", after.status, 401);

  section("logout");
  const before = (await context.cookies()).find((c) => c.name === "__Host-confidoc_session");
  await page.getByRole("button", { name: "Log out", exact: true }).click();
  await statusHas("Logged out.", "logout returns to the login screen");
  const left = (await context.cookies()).find((c) => c.name === "__Host-confidoc_session");
  check("the browser dropped the session cookie", left === undefined, JSON.stringify(left));
  const gone = await nodeGet(`${URL_BASE}/users/me`, { Cookie: `${before.name}=${before.value}` });
  eq("the ended session's cookie no longer works", gone.status, 401);

  section("login with two-factor, by keyboard alone");
  await page.goto(`${URL_BASE}/app/`);
  await page.locator("#login-username").waitFor();
  // From the top of the page: the focus order leads to the username.
  await page.evaluate(() => document.activeElement?.blur());
  const active = () => page.evaluate(() => document.activeElement?.id ?? "");
  for (let i = 0; i < 6 && (await active()) !== "login-username"; i++) await page.keyboard.press("Tab");
  eq("Tab reaches the username", await active(), "login-username");
  await page.keyboard.type(USER);
  await page.keyboard.press("Tab");
  eq("then the password", await active(), "login-password");
  await page.keyboard.type(password);
  await page.keyboard.press("Enter");
  await statusHas("enter the one-time code", "the service asks for the code");
  eq("the code field is shown and focused", await active(), "login-code");
  // The set-up's code was accepted once: a login needs a later step.
  used = await nextStep(used);
  await page.keyboard.type(totp(secret, used));
  await page.keyboard.press("Enter");
  await page.getByRole("heading", { name: "Documents", exact: true }).waitFor();
  ok("Enter with the code logs in");
  eq("the document is still there", await countOf(page.locator('tr[data-record-id="0"]'), 1), 1);

  section("change password");
  await page.getByRole("button", { name: "Password", exact: true }).click();
  const newPassword = "correct horse battery 2";
  await page.getByLabel("New password", { exact: true }).fill(newPassword);
  await page.getByLabel("Repeat the new password").fill(newPassword);
  await page.getByRole("button", { name: "Change password" }).click();
  await statusHas("Password changed", "the password is changed and the session ends");
  await page.locator("#login-password").fill(password);
  await page.getByRole("button", { name: "Log in" }).click();
  await statusHas("Incorrect username or password", "the old password no longer works");
  password = newPassword;
  await page.locator("#login-password").fill(password);
  await page.getByRole("button", { name: "Log in" }).click();
  // The service asks for the code only once the password verified.
  await statusHas("enter the one-time code", "the new password is accepted (the code is asked next)");

  section("CSP");
  const violations = await page.evaluate(() => window.__csp);
  eq("no CSP violation in the page", violations.join("; "), "");
  const cspConsole = consoleErrors.filter((m) => /Content Security Policy|Refused to/i.test(m));
  eq("no CSP message on the console", cspConsole.join("; "), "");
  const pageErrors = consoleErrors.filter((m) => m.startsWith("pageerror"));
  eq("no script error", pageErrors.join("; "), "");
} catch (e) {
  notOk("the flow ran to its end", String(e && e.stack ? e.stack : e).split("\n").slice(0, 4).join(" | "));
  try {
    await shot("failure"); // beside the others: not one to commit
    console.log(`# status: ${await status.textContent()}`);
  } catch {
    // the page is gone
  }
} finally {
  await browser.close();
}
console.log(`# console errors: ${consoleErrors.length ? consoleErrors.join(" | ") : "none"}`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
