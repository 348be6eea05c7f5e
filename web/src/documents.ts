// documents.ts: the documents screen: the list, upload (file picker or drag
// and drop, with a progress bar), download, replace and delete.

import * as api from "./api";
import { putDocument, uploadNew, type Stored } from "./upload";
import { busy, byId, confirmDialog, el, formatSize, say, sayError, timeEl } from "./ui";

let uploading = false;
// The record id the next file chosen in the replace picker goes to.
let replaceTarget: number | null = null;

function progress(loaded: number, total: number): void {
  const bar = byId("upload-progress", HTMLProgressElement);
  const max = Math.max(total, 1);
  bar.max = max;
  bar.value = Math.min(loaded, max);
  byId("upload-progress-text", HTMLSpanElement).textContent = `${formatSize(loaded)} of ${formatSize(total)}`;
}

function documentRow(d: api.DocumentInfo): HTMLTableRowElement {
  const tr = el("tr", undefined, { "data-record-id": String(d.record_id) });
  // The API has no document names: the record id is the name.
  tr.append(el("th", `Document ${d.record_id}`, { scope: "row" }));
  tr.append(el("td", d.content_type));
  const size = el("td", formatSize(d.size), { class: "num", "data-bytes": String(d.size) });
  size.title = `${d.size} bytes`;
  tr.append(size);
  const created = el("td");
  created.append(timeEl(d.created_at));
  const updated = el("td");
  updated.append(timeEl(d.updated_at));
  tr.append(created, updated);
  const actions = el("td", undefined, { class: "actions" });
  const name = `document ${d.record_id}`;
  const dl = el("button", "Download", { type: "button", "aria-label": `Download ${name}` });
  dl.addEventListener("click", () => void busy(dl, () => download(d.record_id)));
  const rep = el("button", "Replace", { type: "button", "aria-label": `Replace ${name}` });
  rep.addEventListener("click", () => {
    replaceTarget = d.record_id;
    byId("replace-file", HTMLInputElement).click();
  });
  const del = el("button", "Delete", { type: "button", class: "danger", "aria-label": `Delete ${name}` });
  del.addEventListener("click", () => void busy(del, () => remove(d.record_id)));
  actions.append(dl, rep, del);
  tr.append(actions);
  return tr;
}

/** Fetches the list and shows it. */
export async function refresh(): Promise<void> {
  const docs = await api.listDocuments();
  const body = byId("documents-body", HTMLTableSectionElement);
  body.replaceChildren(...docs.map(documentRow));
  byId("documents-empty", HTMLParagraphElement).hidden = docs.length > 0;
  byId("documents-table", HTMLTableElement).hidden = docs.length === 0;
}

async function download(id: number): Promise<void> {
  say(`Downloading document ${id}…`);
  const { blob, filename } = await api.downloadDocument(id);
  const url = URL.createObjectURL(blob);
  const a = el("a", undefined, { href: url, download: filename, hidden: "" });
  document.body.append(a);
  a.click();
  a.remove();
  // The download has taken the blob by then; the URL is not needed any more.
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
  say(`Document ${id} downloaded (${formatSize(blob.size)}).`);
}

async function remove(id: number): Promise<void> {
  const ok = await confirmDialog(
    `Delete document ${id}?`,
    `Document ${id} is deleted for good: it cannot be restored.`,
    "Delete",
  );
  if (!ok) {
    say("Nothing was deleted.");
    return;
  }
  await api.deleteDocument(id);
  await refresh();
  say(`Document ${id} deleted.`);
}

async function store(file: File, target: number | null): Promise<void> {
  if (uploading) {
    sayError("An upload is already running; wait until it is done.");
    return;
  }
  uploading = true;
  progress(0, file.size);
  say(`Uploading ${file.name}…`);
  try {
    const stored: Stored =
      target === null ? await uploadNew(file, progress) : await putDocument(target, file, false, progress);
    await refresh();
    say(
      `${file.name} stored as document ${stored.record_id}: version ${stored.version}, ${formatSize(stored.size)}.`,
    );
  } finally {
    uploading = false;
  }
}

export function setupDocuments(): void {
  const input = byId("upload-file", HTMLInputElement);
  input.addEventListener("change", () => {
    const f = input.files?.[0];
    if (f !== undefined) void busy(null, () => store(f, null)).finally(() => (input.value = ""));
  });
  const replace = byId("replace-file", HTMLInputElement);
  replace.addEventListener("change", () => {
    const f = replace.files?.[0];
    const id = replaceTarget;
    replaceTarget = null;
    if (f !== undefined && id !== null) void busy(null, () => store(f, id)).finally(() => (replace.value = ""));
  });
  const zone = byId("dropzone", HTMLDivElement);
  zone.addEventListener("dragover", (e) => {
    e.preventDefault();
    if (e.dataTransfer !== null) e.dataTransfer.dropEffect = "copy";
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    const f = e.dataTransfer?.files[0];
    if (f !== undefined) void busy(null, () => store(f, null));
  });
  // A file dropped beside the zone must not make the browser open it.
  window.addEventListener("dragover", (e) => e.preventDefault());
  window.addEventListener("drop", (e) => e.preventDefault());
}
