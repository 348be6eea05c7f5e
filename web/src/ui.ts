// ui.ts: small DOM helpers shared by the screens. Text reaches the page only
// through textContent and attributes, never as markup.

/** The element with this id, of this type; a missing one is a broken page. */
export function byId<T extends HTMLElement>(id: string, type: { new (): T }): T {
  const el = document.getElementById(id);
  if (!(el instanceof type)) throw new Error(`page element #${id} is missing`);
  return el;
}

/** An element with text and optional attributes. */
export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  text?: string,
  attrs?: Record<string, string>,
): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  if (attrs !== undefined) for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  return e;
}

const statusEl = (): HTMLElement => byId("status", HTMLParagraphElement);

/** A message in the live region (read out by screen readers). */
export function say(message: string): void {
  const s = statusEl();
  s.classList.remove("error");
  s.textContent = message;
}

/** An error in the live region. */
export function sayError(message: string): void {
  const s = statusEl();
  s.classList.add("error");
  s.textContent = message;
}

export function clearStatus(): void {
  say("");
}

/** "4.0 KiB" and the like. */
export function formatSize(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(1)} ${units[i]}`;
}

/** A <time> for an ISO 8601 timestamp of the service (microseconds, UTC). */
export function timeEl(iso: string | null): HTMLElement {
  if (iso === null || iso === "") return el("span", "never");
  const d = new Date(iso.replace(/(\.\d{3})\d+/, "$1"));
  const text = Number.isNaN(d.getTime())
    ? iso
    : d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
  return el("time", text, { datetime: iso });
}

/** Asks a question in the confirmation dialog: true when confirmed. Escape,
 * Cancel and closing the dialog answer false; focus returns where it was. */
export function confirmDialog(title: string, text: string, okLabel: string): Promise<boolean> {
  const dialog = byId("confirm-dialog", HTMLDialogElement);
  const back = document.activeElement instanceof HTMLElement ? document.activeElement : null;
  byId("confirm-title", HTMLHeadingElement).textContent = title;
  byId("confirm-text", HTMLParagraphElement).textContent = text;
  byId("confirm-ok", HTMLButtonElement).textContent = okLabel;
  dialog.returnValue = "cancel";
  return new Promise((resolve) => {
    dialog.addEventListener(
      "close",
      () => {
        resolve(dialog.returnValue === "ok");
        // After the caller's action (which may re-enable or replace the
        // button): back to it, or to the section's heading when it is gone.
        setTimeout(() => {
          if (back !== null && back.isConnected && !back.hasAttribute("disabled")) back.focus();
          else document.querySelector<HTMLElement>("section.screen:not([hidden]) h2")?.focus();
        }, 0);
      },
      { once: true },
    );
    dialog.showModal();
    // The safe answer has the focus: Enter alone never deletes.
    byId("confirm-cancel", HTMLButtonElement).focus();
  });
}

/** Runs an action with its button disabled, reporting failures in the live region. */
export async function busy(button: HTMLButtonElement | null, action: () => Promise<void>): Promise<void> {
  if (button !== null) button.disabled = true;
  try {
    await action();
  } catch (e) {
    sayError(e instanceof Error ? e.message : String(e));
  } finally {
    if (button !== null) button.disabled = false;
  }
}
