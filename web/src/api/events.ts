// The live record-event stream (WebSocket GET /api/v1/events, session cookie): one connection per
// signed-in tab, reconnecting with backoff; views subscribe to refresh what they show.
export interface RecordEvent {
  entity: string;
  id: string;
  /** `imported`: one event per committed import batch; `id` is the import run, `changed` the
   * fields the file writes, `created` / `updated` how many records the batch created / updated. */
  kind: 'created' | 'updated' | 'deleted' | 'restored' | 'imported' | string;
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
  };
  ws.onmessage = (msg) => {
    let e: RecordEvent;
    try {
      e = JSON.parse(String(msg.data)) as RecordEvent;
    } catch {
      return;
    }
    if (!e || typeof e.entity !== 'string') return;
    e.id = String(e.id);
    listeners.forEach((fn) => {
      try {
        fn(e);
      } catch {
        /* one view's failure does not stop the others */
      }
    });
  };
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
