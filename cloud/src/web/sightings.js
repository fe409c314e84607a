// Sightings (a filtered, paged gallery), one frame with all its boxes, and
// the live page.

import { frameImage, get, query } from './api.js';
import { apiImage, empty, errorBox, h, percent, when } from './ui.js';
import { live } from './live.js';

const PAGE_SIZE = 24;
const THUMB_WIDTH = 320;

/** datetime-local value -> RFC 3339 (in the browser's zone), or ''. */
function rfc3339(local) {
  return local ? new Date(local).toISOString() : '';
}

export async function sightingsPage(view) {
  const [seen, devices] = await Promise.all([get('/last-seen'), get('/devices')]);
  const select = (name, label, options) => h('div', { class: 'field' },
    h('label', { for: `filter-${name}` }, label),
    h('select', { id: `filter-${name}`, name },
      h('option', { value: '' }, 'any'),
      options.map(([value, text]) => h('option', { value }, text))));
  const form = h('form', { class: 'filters', 'aria-label': 'Filters' },
    select('label', 'Object', seen.items.map((i) => [i.label, i.label])),
    select('device', 'Camera', devices.items.map((d) => [d.id, d.name])),
    h('div', { class: 'field' }, h('label', { for: 'filter-since' }, 'From'), h('input', { id: 'filter-since', name: 'since', type: 'datetime-local' })),
    h('div', { class: 'field' }, h('label', { for: 'filter-until' }, 'Until'), h('input', { id: 'filter-until', name: 'until', type: 'datetime-local' })),
    h('button', { type: 'submit', class: 'primary' }, 'Show'));
  const gallery = h('ul', { class: 'gallery' });
  const status = h('div', { class: 'status', 'aria-live': 'polite' });
  const more = h('button', { type: 'button', class: 'secondary', hidden: true }, 'Show more');
  view.append(h('h1', {}, 'Sightings'), form, gallery, status, more);

  let cursor = null;
  let filters = {};
  async function load(reset) {
    if (reset) { gallery.replaceChildren(); cursor = null; }
    status.replaceChildren();
    more.hidden = true;
    try {
      const page = await get(query('/detections', { ...filters, limit: PAGE_SIZE, cursor }));
      gallery.append(...page.items.map(tile));
      cursor = page.next_cursor;
      more.hidden = !cursor;
      if (!gallery.children.length) {
        status.append(empty(devices.items.length
          ? h('p', {}, 'No sightings match these filters.')
          : h('p', {}, 'No cameras yet: ', h('a', { href: '#/cameras' }, 'add one'), '.')));
      }
    } catch (error) {
      status.append(errorBox(error));
    }
  }
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const data = new FormData(form);
    filters = {
      label: data.get('label'),
      device: data.get('device'),
      since: rfc3339(data.get('since')),
      until: rfc3339(data.get('until')),
    };
    load(true);
  });
  more.addEventListener('click', () => load(false));
  await load(true);
}

function tile(item) {
  return h('li', { class: 'tile' },
    h('a', { href: `#/frame/${item.frame_id}` },
      apiImage(frameImage(item.frame_id, { width: THUMB_WIDTH }), `${item.label} at ${item.device_name}`),
      h('span', { class: 'caption' },
        h('strong', {}, item.label), ` ${percent(item.score)} · ${item.device_name}`, h('br'), when(item.captured_at))));
}

export async function framePage(view, id) {
  const frame = await get(`/frames/${encodeURIComponent(id || '')}`);
  view.append(
    h('h1', {}, `Frame from ${frame.device_name}`),
    h('p', {}, when(frame.captured_at)),
    h('figure', { class: 'frame-view' },
      apiImage(frameImage(frame.id, { boxes: true }), `Frame ${frame.seq} from ${frame.device_name} with its boxes`, { class: 'frame' }),
      h('figcaption', {}, `${frame.width}×${frame.height} px · ${Math.round(frame.bytes / 1024)} KiB · received `, when(frame.received_at))),
    frame.detections.length
      ? h('table', { class: 'detections' },
        h('caption', {}, `${frame.detections.length} detection${frame.detections.length === 1 ? '' : 's'}`),
        h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Object'), h('th', { scope: 'col' }, 'Score'), h('th', { scope: 'col' }, 'Box (x1, y1, x2, y2)'))),
        h('tbody', {}, frame.detections.map((d) => h('tr', {},
          h('td', {}, h('a', { href: `#/find/${encodeURIComponent(d.label)}` }, d.label)),
          h('td', {}, percent(d.score)),
          h('td', { class: 'mono' }, d.box.map((v) => Math.round(v)).join(', '))))))
      : empty(h('p', {}, 'Nothing was detected in this frame.')));
}

export async function livePage(view) {
  const state = h('p', { class: 'live-state', 'aria-live': 'polite' });
  const list = h('ul', { class: 'gallery live-list', 'aria-live': 'polite' });
  const placeholder = empty(h('p', {}, 'Waiting for your cameras… new frames appear here as they arrive.'));
  view.append(h('h1', {}, 'Live'), state, placeholder, list);

  const showState = () => {
    const text = { live: 'Connected: new frames appear as they arrive.', connecting: 'Connecting…', reconnecting: 'Connection lost; reconnecting…', off: 'Not connected.' };
    state.textContent = text[live.state] || live.state;
    state.dataset.state = live.state;
    if (live.missed) state.textContent += ` ${live.missed} frames were skipped because this page fell behind.`;
  };
  const add = (message, fresh) => {
    placeholder.hidden = true;
    const labels = message.detections.map((d) => `${d.label} ${percent(d.score)}`).join(', ') || 'nothing detected';
    const item = h('li', { class: `tile${fresh ? ' fresh' : ''}`, 'data-frame': message.frame_id },
      h('a', { href: `#/frame/${message.frame_id}` },
        apiImage(frameImage(message.frame_id, { boxes: true, width: THUMB_WIDTH }), `New frame from ${message.device_name}`),
        h('span', { class: 'caption' }, h('strong', {}, message.device_name), ` · ${labels}`, h('br'), when(message.captured_at))));
    if (fresh) list.prepend(item); else list.append(item);
  };
  live.frames.forEach((m) => add(m, false));
  showState();
  const onFrame = (event) => {
    if (!view.isConnected) { unsubscribe(); return; }
    add(event.detail, true);
  };
  const onState = () => { if (view.isConnected) showState(); else unsubscribe(); };
  function unsubscribe() {
    live.removeEventListener('frame', onFrame);
    live.removeEventListener('state', onState);
    live.removeEventListener('missed', onState);
  }
  live.addEventListener('frame', onFrame);
  live.addEventListener('state', onState);
  live.addEventListener('missed', onState);
}
