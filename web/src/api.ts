// api.ts: the calls to confidoc-api (same origin, through nginx): the session
// cookie is HttpOnly and sent by the browser; this module keeps the CSRF token
// that every cookie-authenticated request other than GET must carry.

export interface DocumentInfo {
  record_id: number;
  version: number;
  size: number;
  content_type: string;
  created_at: string;
  updated_at: string;
}

export interface AppPassword {
  id: number | string;
  name: string;
  created_at: string;
  last_used_at: string | null;
}

export interface NewAppPassword {
  id: number | string;
  name: string;
  password: string;
  created_at: string;
}

export interface TotpSetup {
  secret: string;
  otpauth_uri: string;
  qr_svg: string;
}

/** An answer other than 2xx: the HTTP status and the service's detail. */
export class ApiError extends Error {
  readonly status: number;
  constructor(status: number, detail: string) {
    super(detail);
    this.name = "ApiError";
    this.status = status;
  }
}

/** The detail the service gives for a session that ended (logout, expiry, new password). */
export const SESSION_INVALID = "Session expired or invalid";
/** The detail of /auth/login when the account has two-factor login and no code was sent. */
export const CODE_REQUIRED = "A one-time code is required";

// The CSRF token of the current session. It is kept for the tab's life in
// sessionStorage, so that a reload keeps the session; it is not a credential
// by itself (the cookie is, and scripts cannot read it).
const CSRF_KEY = "confidoc.csrf";
const USER_KEY = "confidoc.user";
let csrfToken: string | null = sessionStorage.getItem(CSRF_KEY);

/** Called when a request finds the session gone (401 on a cookie request). */
let onSessionLost: (detail: string) => void = () => {};
export function setSessionLostHandler(fn: (detail: string) => void): void {
  onSessionLost = fn;
}

export function savedUser(): string | null {
  return csrfToken !== null ? sessionStorage.getItem(USER_KEY) : null;
}

function setSession(user: string | null, csrf: string | null): void {
  csrfToken = csrf;
  if (user !== null && csrf !== null) {
    sessionStorage.setItem(CSRF_KEY, csrf);
    sessionStorage.setItem(USER_KEY, user);
  } else {
    sessionStorage.removeItem(CSRF_KEY);
    sessionStorage.removeItem(USER_KEY);
  }
}

/** The headers of a cookie-authenticated request with this method. */
export function authHeaders(method: string): Record<string, string> {
  const h: Record<string, string> = { Accept: "application/json" };
  if (method !== "GET" && method !== "HEAD" && csrfToken !== null) h["X-CSRF-Token"] = csrfToken;
  return h;
}

async function detailOf(resp: Response): Promise<string> {
  try {
    const body: unknown = await resp.json();
    if (body !== null && typeof body === "object" && "detail" in body) {
      const d = (body as { detail: unknown }).detail;
      if (typeof d === "string") return d;
    }
  } catch {
    // not JSON: fall through
  }
  return `The service answered ${resp.status} ${resp.statusText}`.trim();
}

/** A failed answer as an ApiError; a lost session also ends the app's session. */
export async function failure(resp: Response, session: boolean): Promise<ApiError> {
  const detail = await detailOf(resp);
  if (session && resp.status === 401) {
    setSession(null, null);
    onSessionLost(detail);
  }
  return new ApiError(resp.status, detail);
}

/** One request with the session; a JSON body when body is given. */
export async function call(method: string, path: string, body?: unknown): Promise<Response> {
  const headers = authHeaders(method);
  const init: RequestInit = { method, headers, credentials: "same-origin", cache: "no-store" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let resp: Response;
  try {
    resp = await fetch(path, init);
  } catch {
    throw new ApiError(0, "The service cannot be reached");
  }
  if (!resp.ok) throw await failure(resp, true);
  return resp;
}

async function callJson<T>(method: string, path: string, body?: unknown): Promise<T> {
  const resp = await call(method, path, body);
  return (await resp.json()) as T;
}

/** UTF-8 bytes of s in base64 (btoa alone takes Latin-1 only). */
export function base64Utf8(s: string): string {
  let bin = "";
  for (const b of new TextEncoder().encode(s)) bin += String.fromCharCode(b);
  return btoa(bin);
}

/** POST /users/create_account with the new account's credentials: its recovery code. */
export async function createAccount(username: string, password: string): Promise<string> {
  let resp: Response;
  try {
    resp = await fetch("/users/create_account", {
      method: "POST",
      headers: { Accept: "application/json", Authorization: "Basic " + base64Utf8(`${username}:${password}`) },
      credentials: "omit",
      cache: "no-store",
    });
  } catch {
    throw new ApiError(0, "The service cannot be reached");
  }
  if (!resp.ok) throw await failure(resp, false);
  const body = (await resp.json()) as { recovery_code: string };
  return body.recovery_code;
}

/** POST /auth/login: starts a session (the cookie) and keeps its CSRF token. */
export async function login(username: string, password: string, totp: string | null): Promise<string> {
  const body: Record<string, string> = { username, password };
  if (totp !== null) body["totp"] = totp;
  let resp: Response;
  try {
    resp = await fetch("/auth/login", {
      method: "POST",
      headers: { Accept: "application/json", "Content-Type": "application/json" },
      body: JSON.stringify(body),
      credentials: "same-origin",
      cache: "no-store",
    });
  } catch {
    throw new ApiError(0, "The service cannot be reached");
  }
  if (!resp.ok) throw await failure(resp, false);
  const ans = (await resp.json()) as { username: string; csrf_token: string };
  setSession(ans.username, ans.csrf_token);
  return ans.username;
}

/** POST /auth/logout; the local session ends whatever the answer. */
export async function logout(): Promise<void> {
  try {
    await call("POST", "/auth/logout");
  } finally {
    setSession(null, null);
  }
}

/** The session ended on the service's side (password changed, account deleted). */
export function forgetSession(): void {
  setSession(null, null);
}

/** GET /users/me: the user name when the session still holds. */
export async function me(): Promise<string> {
  return (await callJson<{ username: string }>("GET", "/users/me")).username;
}

/** Every document, following next_after page by page. */
export async function listDocuments(): Promise<DocumentInfo[]> {
  const all: DocumentInfo[] = [];
  let after: number | null = null;
  for (let page = 0; page < 10000; page++) {
    const q: string = after === null ? "" : `&after=${after}`;
    const ans: { documents: DocumentInfo[]; next_after: number | null } = await callJson(
      "GET",
      `/documents?limit=100${q}`,
    );
    all.push(...ans.documents);
    if (ans.next_after === null || ans.documents.length === 0) break;
    after = ans.next_after;
  }
  return all;
}

/** GET /documents/{id}/content as a Blob, with the file name the service proposes. */
export async function downloadDocument(id: number): Promise<{ blob: Blob; filename: string }> {
  const resp = await call("GET", `/documents/${id}/content`);
  const blob = await resp.blob();
  return { blob, filename: filenameOf(resp.headers.get("Content-Disposition"), id) };
}

function filenameOf(disposition: string | null, id: number): string {
  const m = disposition !== null ? /filename="([A-Za-z0-9._-]+)"/.exec(disposition) : null;
  return m !== null && m[1] !== undefined ? m[1] : `document-${id}`;
}

export async function deleteDocument(id: number): Promise<void> {
  await call("DELETE", `/documents/${id}`);
}

export async function changePassword(newPassword: string): Promise<void> {
  await call("POST", "/users/me/password", { new_password: newPassword });
}

export async function deleteAccount(): Promise<void> {
  await call("DELETE", "/users/me");
}

export async function totpBegin(): Promise<TotpSetup> {
  return callJson<TotpSetup>("POST", "/users/me/totp");
}

export async function totpConfirm(code: string): Promise<void> {
  await call("POST", "/users/me/totp/confirm", { code });
}

export async function totpDisable(code: string): Promise<void> {
  await call("DELETE", "/users/me/totp", { code });
}

export async function listAppPasswords(): Promise<AppPassword[]> {
  return (await callJson<{ app_passwords: AppPassword[] }>("GET", "/users/me/app-passwords")).app_passwords;
}

export async function createAppPassword(name: string): Promise<NewAppPassword> {
  return callJson<NewAppPassword>("POST", "/users/me/app-passwords", { name });
}

export async function revokeAppPassword(id: number | string): Promise<void> {
  await call("DELETE", `/users/me/app-passwords/${encodeURIComponent(String(id))}`);
}
