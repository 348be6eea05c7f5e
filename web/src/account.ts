// account.ts: the account screens: password change and account deletion,
// two-factor login (set up, confirm, turn off), application passwords.

import * as api from "./api";
import { busy, byId, confirmDialog, el, say, timeEl } from "./ui";

/** What the account screens need from the app: the end of the session. */
export interface AccountHooks {
  sessionEnded(message: string): void;
}

const CODE_RE = /^[0-9]{6}$/;

function submitter(form: HTMLFormElement): HTMLButtonElement | null {
  return form.querySelector("button[type=submit]");
}

function setupPassword(hooks: AccountHooks): void {
  const form = byId("password-form", HTMLFormElement);
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    void busy(submitter(form), async () => {
      const p1 = byId("new-password", HTMLInputElement);
      const p2 = byId("new-password2", HTMLInputElement);
      if (p1.value.length < 8) throw new Error("The new password needs at least 8 characters.");
      if (p1.value !== p2.value) throw new Error("The two passwords differ.");
      await api.changePassword(p1.value);
      p1.value = p2.value = "";
      api.forgetSession();
      hooks.sessionEnded("Password changed. Every session has ended: log in with the new password.");
    });
  });
  const del = byId("delete-account", HTMLButtonElement);
  del.addEventListener("click", () => {
    void busy(del, async () => {
      const ok = await confirmDialog(
        "Delete the account?",
        "The account and every document in it are deleted at once and for good.",
        "Delete account",
      );
      if (!ok) {
        say("The account was not deleted.");
        return;
      }
      await api.deleteAccount();
      api.forgetSession();
      hooks.sessionEnded("The account and its documents are deleted.");
    });
  });
}

function setupTwoFactor(): void {
  const begin = byId("totp-begin", HTMLButtonElement);
  const panel = byId("totp-setup", HTMLDivElement);
  begin.addEventListener("click", () => {
    void busy(begin, async () => {
      const s = await api.totpBegin();
      // The QR code as an image: the service's SVG never becomes part of the DOM.
      byId("totp-qr", HTMLImageElement).src = "data:image/svg+xml;base64," + api.base64Utf8(s.qr_svg);
      byId("totp-secret", HTMLElement).textContent = s.secret;
      panel.hidden = false;
      byId("totp-code", HTMLInputElement).focus();
      say("Scan the code, then enter the six digits the app shows and confirm.");
    });
  });
  const confirm = byId("totp-confirm-form", HTMLFormElement);
  confirm.addEventListener("submit", (e) => {
    e.preventDefault();
    void busy(submitter(confirm), async () => {
      const code = byId("totp-code", HTMLInputElement);
      if (!CODE_RE.test(code.value)) throw new Error("The code is six digits.");
      await api.totpConfirm(code.value);
      code.value = "";
      panel.hidden = true;
      byId("totp-qr", HTMLImageElement).removeAttribute("src");
      byId("totp-secret", HTMLElement).textContent = "";
      say("Two-factor login is on: logging in now also asks for a one-time code.");
    });
  });
  const off = byId("totp-off-form", HTMLFormElement);
  off.addEventListener("submit", (e) => {
    e.preventDefault();
    void busy(submitter(off), async () => {
      const code = byId("totp-off-code", HTMLInputElement);
      if (!CODE_RE.test(code.value)) throw new Error("The code is six digits.");
      await api.totpDisable(code.value);
      code.value = "";
      say("Two-factor login is off.");
    });
  });
}

function appPasswordRow(p: api.AppPassword): HTMLTableRowElement {
  const tr = el("tr", undefined, { "data-id": String(p.id) });
  tr.append(el("th", p.name, { scope: "row" }));
  const created = el("td");
  created.append(timeEl(p.created_at));
  const used = el("td");
  used.append(timeEl(p.last_used_at));
  const actions = el("td", undefined, { class: "actions" });
  const revoke = el("button", "Revoke", { type: "button", class: "danger", "aria-label": `Revoke ${p.name}` });
  revoke.addEventListener("click", () => {
    void busy(revoke, async () => {
      const ok = await confirmDialog(
        `Revoke “${p.name}”?`,
        "Programs using this application password stop working at once.",
        "Revoke",
      );
      if (!ok) {
        say("Nothing was revoked.");
        return;
      }
      await api.revokeAppPassword(p.id);
      await refreshAppPasswords();
      say(`Application password “${p.name}” revoked.`);
    });
  });
  actions.append(revoke);
  tr.append(created, used, actions);
  return tr;
}

export async function refreshAppPasswords(): Promise<void> {
  const list = await api.listAppPasswords();
  byId("apppasswords-body", HTMLTableSectionElement).replaceChildren(...list.map(appPasswordRow));
  byId("apppasswords-empty", HTMLParagraphElement).hidden = list.length > 0;
  byId("apppasswords-table", HTMLTableElement).hidden = list.length === 0;
}

function setupAppPasswords(): void {
  const form = byId("apppassword-form", HTMLFormElement);
  const panel = byId("apppassword-new", HTMLDivElement);
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    void busy(submitter(form), async () => {
      const name = byId("apppassword-name", HTMLInputElement);
      if (name.value.trim() === "") throw new Error("Give the application password a name.");
      const created = await api.createAppPassword(name.value.trim());
      name.value = "";
      byId("apppassword-value", HTMLElement).textContent = created.password;
      panel.hidden = false;
      byId("apppassword-new-title", HTMLHeadingElement).focus();
      await refreshAppPasswords();
      say(`Application password “${created.name}” created: copy it now, it is not shown again.`);
    });
  });
  byId("apppassword-done", HTMLButtonElement).addEventListener("click", () => hideNewAppPassword());
}

/** Forgets the application password shown once. */
export function hideNewAppPassword(): void {
  byId("apppassword-value", HTMLElement).textContent = "";
  byId("apppassword-new", HTMLDivElement).hidden = true;
}

/** Clears what the two-factor set-up showed. */
export function hideTotpSetup(): void {
  byId("totp-setup", HTMLDivElement).hidden = true;
  byId("totp-qr", HTMLImageElement).removeAttribute("src");
  byId("totp-secret", HTMLElement).textContent = "";
}

export function setupAccount(hooks: AccountHooks): void {
  setupPassword(hooks);
  setupTwoFactor();
  setupAppPasswords();
}
