// main.ts: confidoc's web application: the screens (log in, sign up, the
// signed-in sections), the navigation between them, and the session's life.

import * as api from "./api";
import { hideNewAppPassword, hideTotpSetup, refreshAppPasswords, setupAccount } from "./account";
import { refresh as refreshDocuments, setupDocuments } from "./documents";
import { busy, byId, clearStatus, say, sayError } from "./ui";

type Screen = "login" | "signup" | "documents" | "password" | "twofactor" | "apppasswords";
const SIGNED_IN: readonly Screen[] = ["documents", "password", "twofactor", "apppasswords"];
const SCREENS: readonly Screen[] = ["login", "signup", ...SIGNED_IN];

function headingOf(screen: Screen): HTMLElement {
  return byId(`${screen}-title`, HTMLHeadingElement);
}

/** Shows one screen; the signed-in ones with the navigation. */
function show(screen: Screen): void {
  for (const s of SCREENS) byId(`screen-${s}`, HTMLElement).hidden = s !== screen;
  const signedIn = SIGNED_IN.includes(screen);
  byId("nav", HTMLElement).hidden = !signedIn;
  for (const b of document.querySelectorAll<HTMLButtonElement>("#nav button[data-section]")) {
    if (b.dataset["section"] === screen) b.setAttribute("aria-current", "page");
    else b.removeAttribute("aria-current");
  }
  document.title = `${headingOf(screen).textContent ?? ""} – confidoc`;
}

/** Opens a signed-in section, loading what it lists; the focus moves to its heading. */
async function open(screen: Screen): Promise<void> {
  show(screen);
  headingOf(screen).focus();
  if (screen === "documents") await refreshDocuments();
  if (screen === "apppasswords") await refreshAppPasswords();
}

function signedIn(user: string): void {
  byId("who", HTMLElement).textContent = user;
  void busy(null, () => open("documents"));
}

/** Back to the login screen, with every secret the screens showed cleared. */
function toLogin(message: string | null, isError = false): void {
  hideNewAppPassword();
  hideTotpSetup();
  byId("documents-body", HTMLTableSectionElement).replaceChildren();
  byId("apppasswords-body", HTMLTableSectionElement).replaceChildren();
  byId("login-password", HTMLInputElement).value = "";
  byId("login-code", HTMLInputElement).value = "";
  byId("login-code-row", HTMLDivElement).hidden = true;
  show("login");
  if (message === null) clearStatus();
  else if (isError) sayError(message);
  else say(message);
  const user = byId("login-username", HTMLInputElement);
  (user.value === "" ? user : byId("login-password", HTMLInputElement)).focus();
}

function setupLogin(): void {
  const form = byId("login-form", HTMLFormElement);
  const codeRow = byId("login-code-row", HTMLDivElement);
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    void busy(form.querySelector("button[type=submit]"), async () => {
      const user = byId("login-username", HTMLInputElement).value.trim();
      const pass = byId("login-password", HTMLInputElement);
      const code = byId("login-code", HTMLInputElement);
      if (user === "" || pass.value === "") throw new Error("Enter your username and password.");
      try {
        const name = await api.login(user, pass.value, codeRow.hidden ? null : code.value.trim());
        pass.value = "";
        code.value = "";
        codeRow.hidden = true;
        say(`Logged in as ${name}.`);
        signedIn(name);
      } catch (err) {
        if (err instanceof api.ApiError && err.status === 401 && err.message === api.CODE_REQUIRED) {
          codeRow.hidden = false;
          code.focus();
          say("This account uses two-factor login: enter the one-time code from your app.");
          return;
        }
        throw err;
      }
    });
  });
  byId("to-signup", HTMLButtonElement).addEventListener("click", () => {
    show("signup");
    clearStatus();
    byId("signup-username", HTMLInputElement).focus();
  });
}

function setupSignup(): void {
  const form = byId("signup-form", HTMLFormElement);
  const panel = byId("recovery", HTMLDivElement);
  const ack = byId("recovery-ack", HTMLInputElement);
  const done = byId("recovery-done", HTMLButtonElement);
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    void busy(form.querySelector("button[type=submit]"), async () => {
      const user = byId("signup-username", HTMLInputElement).value.trim();
      const p1 = byId("signup-password", HTMLInputElement);
      const p2 = byId("signup-password2", HTMLInputElement);
      if (!/^[A-Za-z0-9._@-]{1,64}$/.test(user))
        throw new Error("A username is 1 to 64 letters, digits or . _ @ -");
      if (p1.value.length < 8) throw new Error("The password needs at least 8 characters.");
      if (p1.value !== p2.value) throw new Error("The two passwords differ.");
      const code = await api.createAccount(user, p1.value);
      p1.value = p2.value = "";
      byId("recovery-code", HTMLElement).textContent = code;
      form.hidden = true;
      panel.hidden = false;
      ack.checked = false;
      done.disabled = true;
      byId("recovery-title", HTMLHeadingElement).focus();
      say(`Account ${user} created. Store the recovery code now: it is shown only once.`);
      byId("login-username", HTMLInputElement).value = user;
    });
  });
  ack.addEventListener("change", () => (done.disabled = !ack.checked));
  done.addEventListener("click", () => {
    byId("recovery-code", HTMLElement).textContent = "";
    panel.hidden = true;
    form.hidden = false;
    toLogin("Log in with your new account.");
  });
  byId("to-login", HTMLButtonElement).addEventListener("click", () => toLogin(null));
}

function setupNav(): void {
  for (const b of document.querySelectorAll<HTMLButtonElement>("#nav button[data-section]")) {
    b.addEventListener("click", () => {
      clearStatus();
      void busy(null, () => open(b.dataset["section"] as Screen));
    });
  }
  const out = byId("logout", HTMLButtonElement);
  out.addEventListener("click", () => {
    void busy(out, async () => {
      try {
        await api.logout();
      } finally {
        toLogin("Logged out.");
      }
    });
  });
}

async function start(): Promise<void> {
  setupLogin();
  setupSignup();
  setupNav();
  setupDocuments();
  setupAccount({ sessionEnded: (m) => toLogin(m) });
  api.setSessionLostHandler((detail) => toLogin(`${detail}: log in again.`, true));
  const saved = api.savedUser();
  if (saved !== null) {
    try {
      signedIn(await api.me());
      return;
    } catch {
      // the session ended meanwhile: log in again
    }
  }
  toLogin(null);
}

void start();
