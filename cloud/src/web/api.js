// The REST API under /api/v1: the session token, JSON calls, and images
// (fetched with the token and shown through blob: URLs).

const TOKEN_KEY = 'lastseen.token';

export const session = {
  get token() { return localStorage.getItem(TOKEN_KEY); },
  set(token) { localStorage.setItem(TOKEN_KEY, token); },
  clear() {
    localStorage.removeItem(TOKEN_KEY);
    clearImages();
    window.dispatchEvent(new Event('lastseen:signed-out'));
  },
};

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function request(method, path, body) {
  const headers = {};
  const token = session.token;
  if (token) headers.Authorization = `Bearer ${token}`;
  const init = { method, headers };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path.startsWith('/api/') ? path : `/api/v1${path}`, init);
  } catch (error) {
    throw new ApiError(0, 'network', `Cannot reach lastseen (${error.message}). Check your connection.`);
  }
  if (response.ok) return response;
  let code = `http_${response.status}`;
  let message = `${response.status} ${response.statusText}`;
  try {
    const answer = await response.json();
    code = answer.error.code;
    message = answer.error.message;
  } catch {
    // Not our JSON error shape (a proxy's page, say): keep the status line.
  }
  // The session ended elsewhere (logout, password change): back to sign in.
  if (response.status === 401 && token && path !== '/auth/login') session.clear();
  throw new ApiError(response.status, code, message);
}

/** Calls the API; resolves to the JSON answer, or null for 204. */
export async function api(method, path, body) {
  const response = await request(method, path, body);
  return response.status === 204 ? null : response.json();
}

export const get = (path) => api('GET', path);

let registration;
/** How accounts are made here: 'open', 'invite' or 'closed' (asked once). */
export function registrationMode() {
  registration ??= api('GET', '/auth/registration').then((answer) => answer.mode, () => 'open');
  return registration;
}

/** `/detections`-style query strings, leaving out empty values. */
export function query(path, params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '') search.set(key, value);
  }
  const text = search.toString();
  return text ? `${path}?${text}` : path;
}

// Images need the Authorization header, so <img src> cannot load them
// directly. Object URLs are kept for reuse, the oldest released first.
const MAX_IMAGES = 300;
const images = new Map();

function clearImages() {
  for (const url of images.values()) url.then(URL.revokeObjectURL, () => {});
  images.clear();
}

/** A blob: URL for an API image path such as /api/v1/frames/ID/image?width=320. */
export function imageUrl(path) {
  let url = images.get(path);
  if (!url) {
    url = request('GET', path).then((r) => r.blob()).then((blob) => URL.createObjectURL(blob));
    url.catch(() => images.delete(path));
    images.set(path, url);
    if (images.size > MAX_IMAGES) {
      const [oldest, old] = images.entries().next().value;
      images.delete(oldest);
      old.then(URL.revokeObjectURL, () => {});
    }
  }
  return url;
}

export function frameImage(frameId, { boxes = false, width } = {}) {
  return query(`/api/v1/frames/${frameId}/image`, { boxes: boxes ? 'true' : '', width });
}
