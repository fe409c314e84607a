// The live feed: one WebSocket to /api/v1/live while signed in, which
// reconnects by itself (doubling delays, capped) and keeps the recent frames
// for the Live page.

import { session } from './api.js';

const KEEP = 60;
const FIRST_DELAY_MS = 1000;
const MAX_DELAY_MS = 30_000;
// Close codes the server uses for a refused session (see http/live.rs).
const UNAUTHORIZED = 4401;

export class LiveFeed extends EventTarget {
  constructor() {
    super();
    this.frames = [];
    this.missed = 0;
    this.state = 'off';
    this.socket = null;
    this.delay = FIRST_DELAY_MS;
    this.timer = null;
  }

  start() {
    if (this.socket || this.timer) return;
    const token = session.token;
    if (!token) return;
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    const socket = new WebSocket(`${scheme}://${location.host}/api/v1/live`);
    this.socket = socket;
    this.setState('connecting');
    socket.addEventListener('open', () => socket.send(JSON.stringify({ type: 'auth', token })));
    socket.addEventListener('message', (event) => this.receive(JSON.parse(event.data)));
    socket.addEventListener('close', (event) => {
      if (this.socket !== socket) return;
      this.socket = null;
      if (event.code === UNAUTHORIZED) {
        this.setState('off');
        if (session.token === token) session.clear();
        return;
      }
      this.setState('reconnecting');
      this.timer = setTimeout(() => { this.timer = null; this.start(); }, this.delay);
      this.delay = Math.min(this.delay * 2, MAX_DELAY_MS);
    });
  }

  stop() {
    clearTimeout(this.timer);
    this.timer = null;
    const socket = this.socket;
    this.socket = null;
    if (socket) socket.close(1000, 'signed out');
    this.frames = [];
    this.setState('off');
  }

  receive(message) {
    if (message.type === 'ready') {
      this.delay = FIRST_DELAY_MS;
      this.setState('live');
    } else if (message.type === 'frame') {
      this.frames.unshift(message);
      this.frames.length = Math.min(this.frames.length, KEEP);
      this.dispatchEvent(new CustomEvent('frame', { detail: message }));
    } else if (message.type === 'missed') {
      this.missed += message.count;
      this.dispatchEvent(new CustomEvent('missed', { detail: message.count }));
    }
  }

  setState(state) {
    this.state = state;
    this.dispatchEvent(new CustomEvent('state', { detail: state }));
  }
}

export const live = new LiveFeed();
