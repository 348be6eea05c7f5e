// upload.ts: PUT /documents/{id} with XMLHttpRequest, whose upload.onprogress
// reports the bytes sent (fetch has no upload progress), and the next free
// record id as the command-line client picks it: the highest id + 1, sent with
// If-None-Match: * so that a document stored there meanwhile is never
// overwritten (412: the next id is tried).

import { ApiError, authHeaders, failure, listDocuments } from "./api";

export interface Stored {
  record_id: number;
  version: number;
  size: number;
  content_type: string;
}

/** How many ids put tries after the first 412, as the CLI does. */
const PUT_ATTEMPTS = 5;

/** The Content-Type a file is stored with. A file the browser calls
 * application/json is sent as bytes: that type would make the service read the
 * body as {"content": TEXT} (README, PUT /documents/{id}). */
export function contentTypeOf(file: File): string {
  const t = file.type;
  if (t === "" || /^application\/json\b/i.test(t)) return "application/octet-stream";
  return t;
}

/** One PUT of file to record id; createOnly adds If-None-Match: *. */
export function putDocument(
  id: number,
  file: File,
  createOnly: boolean,
  onProgress: (loaded: number, total: number) => void,
): Promise<Stored> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("PUT", `/documents/${id}`);
    xhr.withCredentials = true;
    for (const [k, v] of Object.entries(authHeaders("PUT"))) xhr.setRequestHeader(k, v);
    xhr.setRequestHeader("Content-Type", contentTypeOf(file));
    if (createOnly) xhr.setRequestHeader("If-None-Match", "*");
    xhr.upload.onprogress = (e: ProgressEvent) => {
      onProgress(e.loaded, e.lengthComputable ? e.total : file.size);
    };
    xhr.onerror = () => reject(new ApiError(0, "The upload failed: the service cannot be reached"));
    xhr.onabort = () => reject(new ApiError(0, "The upload was cancelled"));
    xhr.onload = () => {
      const resp = new Response(xhr.status === 204 ? null : xhr.responseText, {
        status: xhr.status,
        headers: { "Content-Type": xhr.getResponseHeader("Content-Type") ?? "application/json" },
      });
      if (xhr.status >= 200 && xhr.status < 300) {
        onProgress(file.size, file.size);
        resp.json().then((b) => resolve(b as Stored), reject);
      } else {
        failure(resp, true).then(reject, reject);
      }
    };
    xhr.send(file);
  });
}

/** Stores file under the next free record id (the highest + 1, or 0 for none, as the CLI). */
export async function uploadNew(file: File, onProgress: (loaded: number, total: number) => void): Promise<Stored> {
  const docs = await listDocuments();
  let id = docs.reduce((m, d) => Math.max(m, d.record_id), -1) + 1;
  for (let i = 0; ; i++, id++) {
    try {
      return await putDocument(id, file, true, onProgress);
    } catch (e) {
      if (!(e instanceof ApiError) || e.status !== 412 || i + 1 >= PUT_ATTEMPTS) throw e;
    }
  }
}
