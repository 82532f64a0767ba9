// The live record-event stream (WebSocket GET /api/v1/events, session cookie): one connection per
// signed-in tab, reconnecting with backoff; views subscribe to refresh what they show.
export interface RecordEvent {
  entity: string;
  id: string;
  /** `imported`: one event per committed import batch; `id` is the import run, `changed` the
   * fields the file writes, `created` / `updated` how many records the batch created / updated. */
  /** `resync` (entity `*`): events may have been missed — the server's link to the other
   * servers, or this tab's own connection, was lost and is back; views re-read what they show. */
  kind: 'created' | 'updated' | 'deleted' | 'restored' | 'imported' | 'resync' | string;
  changed?: string[];
  at?: string;
  created?: number;
  updated?: number;
}

type Listener = (e: RecordEvent) => void;
const listeners = new Set<Listener>();
let socket: WebSocket | null = null;
let wanted = false;
let attempt = 0;
let timer: ReturnType<typeof setTimeout> | null = null;
let everOpen = false; // a socket was open before: a reopened one may have missed events

/** Passes one message of the stream to every listener; `resync` goes to all as entity `*`. */
export function dispatchEventMessage(data: string): void {
  let e: RecordEvent;
  try {
    e = JSON.parse(data) as RecordEvent;
  } catch {
    return;
  }
  if (e && e.kind === 'resync') e = { entity: '*', id: '', kind: 'resync' };
  if (!e || typeof e.entity !== 'string') return;
  e.id = String(e.id);
  listeners.forEach((fn) => {
    try {
      fn(e);
    } catch {
      /* one view's failure does not stop the others */
    }
  });
}

export function eventsUrl(loc: Pick<Location, 'protocol' | 'host'> = window.location): string {
  return `${loc.protocol === 'https:' ? 'wss:' : 'ws:'}//${loc.host}/api/v1/events`;
}

function open(): void {
  if (!wanted || socket || typeof WebSocket === 'undefined') return;
  let ws: WebSocket;
  try {
    ws = new WebSocket(eventsUrl());
  } catch {
    schedule();
    return;
  }
  socket = ws;
  ws.onopen = () => {
    attempt = 0;
    if (everOpen) dispatchEventMessage('{"kind":"resync"}');
    everOpen = true;
  };
  ws.onmessage = (msg) => dispatchEventMessage(String(msg.data));
  ws.onclose = () => {
    socket = null;
    schedule();
  };
  ws.onerror = () => ws.close();
}

function schedule(): void {
  if (!wanted || timer) return;
  const delay = Math.min(30000, 1000 * 2 ** attempt++);
  timer = setTimeout(() => {
    timer = null;
    open();
  }, delay);
}

export function connectEvents(): void {
  wanted = true;
  open();
}

export function disconnectEvents(): void {
  wanted = false;
  everOpen = false;
  if (timer) clearTimeout(timer);
  timer = null;
  socket?.close();
  socket = null;
}

/** Subscribes to record events; returns the unsubscribe function. */
export function onRecordEvent(fn: Listener): () => void {
  listeners.add(fn);
  return () => listeners.delete(fn);
}
