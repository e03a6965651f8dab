// The public API, called with the user's JWT. The token lives in sessionStorage
// (gone when the tab closes, never sent by the browser on its own as a cookie
// would be, so there is nothing for a cross-site request to ride on).

const TOKEN_KEY = "openencoder.token";

// The page is served at <stage>/dashboard, the API at <stage>/api/.
export const apiBase = new URL("api/", document.baseURI);

export class ApiError extends Error {
  constructor(status, message, data = null) {
    super(message);
    this.status = status;
    this.data = data; // the error's JSON body, for answers that say more (health checks)
  }
}

let unauthorized = () => {};

export function onUnauthorized(callback) {
  unauthorized = callback;
}

export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(value) {
  if (value) sessionStorage.setItem(TOKEN_KEY, value);
  else sessionStorage.removeItem(TOKEN_KEY);
}

export function url(path) {
  return new URL(path.replace(/^\/+/, ""), apiBase);
}

export async function call(method, path, body, { signal } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const bearer = token();
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  let response;
  try {
    response = await fetch(url(path), {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
      credentials: "omit",
      signal,
    });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, `the API did not answer (${error.message})`);
  }
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) {
    const message = (data && data.message) || `${response.status} ${response.statusText}`;
    if (response.status === 401 && bearer) unauthorized(message);
    throw new ApiError(response.status, message, data);
  }
  return data;
}

export const get = (path, options) => call("GET", path, undefined, options);
export const post = (path, body = {}) => call("POST", path, body);
export const put = (path, body) => call("PUT", path, body);
export const del = (path) => call("DELETE", path);

// One PUT of a blob with upload progress (fetch has none), resolving to the ETag.
function putBlob(target, blob, headers, onProgress, signal) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("PUT", target);
    for (const [name, value] of Object.entries(headers || {})) xhr.setRequestHeader(name, value);
    xhr.upload.addEventListener("progress", (event) => onProgress(event.loaded));
    xhr.addEventListener("load", () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        onProgress(blob.size);
        resolve(xhr.getResponseHeader("ETag"));
      } else {
        reject(new ApiError(xhr.status, `storage refused the upload (${xhr.status})`));
      }
    });
    xhr.addEventListener("error", () =>
      reject(new ApiError(0, "storage did not answer (is its CORS set for this page?)")),
    );
    xhr.addEventListener("abort", () => reject(new DOMException("upload aborted", "AbortError")));
    if (signal) signal.addEventListener("abort", () => xhr.abort());
    xhr.send(blob);
  });
}

// Upload a file through the uploads API: a presigned PUT, or presigned parts
// then `complete` with their ETags. `onProgress(fraction)` runs as bytes go out.
export async function upload(file, onProgress, signal) {
  const created = await post("/uploads", {
    filename: file.name,
    size: file.size,
    content_type: file.type || "application/octet-stream",
  });
  const ticket = created.upload;
  try {
    let parts = [];
    if (ticket.method === "multipart") {
      const sent = new Array(ticket.parts.length).fill(0);
      const report = () => onProgress(sent.reduce((a, b) => a + b, 0) / file.size);
      for (const part of ticket.parts) {
        const start = (part.part_number - 1) * ticket.part_size;
        const blob = file.slice(start, start + ticket.part_size);
        const etag = await putBlob(part.url, blob, {}, (n) => {
          sent[part.part_number - 1] = n;
          report();
        }, signal);
        parts.push({ part_number: part.part_number, etag });
      }
    } else {
      await putBlob(ticket.url, file, ticket.headers, (n) => onProgress(n / file.size), signal);
      parts = undefined;
    }
    const done = await post(`/uploads/${encodeURIComponent(ticket.id)}/complete`, parts ? { parts } : {});
    return done.upload;
  } catch (error) {
    // Leave nothing half-made behind; the abort itself may fail harmlessly.
    call("DELETE", `/uploads/${encodeURIComponent(ticket.id)}`).catch(() => {});
    throw error;
  }
}
