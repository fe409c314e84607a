// Home: "Where is my ___?" and the answer card with the last sighting.

import { ApiError, frameImage, get, query } from './api.js';
import { apiImage, empty, errorBox, h, percent, when } from './ui.js';

const PREVIOUS = 12;

export async function homePage(view, label = '') {
  const seen = await get('/last-seen');
  const labels = seen.items.map((item) => item.label);
  const input = h('input', {
    id: 'what', name: 'label', type: 'search', list: 'seen-labels', autocomplete: 'off',
    placeholder: labels[0] || 'cup', value: label, required: true, autocapitalize: 'none',
  });
  const form = h('form', { class: 'ask', role: 'search' },
    h('label', { for: 'what' }, 'Where is my'),
    h('div', { class: 'ask-row' }, input, h('button', { type: 'submit', class: 'primary' }, 'Find')),
    h('datalist', { id: 'seen-labels' }, labels.map((l) => h('option', { value: l }))));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const wanted = input.value.trim().toLowerCase();
    if (wanted) location.hash = `#/find/${encodeURIComponent(wanted)}`;
  });
  const answer = h('section', { class: 'answer', 'aria-live': 'polite' });
  view.append(h('h1', { class: 'visually-hidden' }, 'Find'), form, answer);

  if (!labels.length) {
    answer.append(empty(
      h('p', {}, 'Nothing seen yet.'),
      h('p', {}, 'Add a camera, and what it sees will show up here. ', h('a', { href: '#/cameras' }, 'Add a camera'))));
    return;
  }
  if (!label) {
    answer.append(h('div', { class: 'chips', 'aria-label': 'Things seen' },
      h('span', { class: 'hint' }, 'Seen so far:'),
      seen.items.map((item) => h('a', { class: 'chip', href: `#/find/${encodeURIComponent(item.label)}` }, item.label))));
    return;
  }
  input.select();
  await showAnswer(answer, label);
}

async function showAnswer(answer, label) {
  let last;
  try {
    last = await get(query('/last-seen', { label }));
  } catch (error) {
    if (error instanceof ApiError && error.code === 'never_seen') {
      answer.append(empty(h('p', {}, `Your cameras have not seen a ${label} yet.`)));
      return;
    }
    answer.append(errorBox(error));
    return;
  }
  const card = h('article', { class: 'card sighting', 'aria-labelledby': 'answer-title' },
    h('a', { href: `#/frame/${last.frame_id}`, class: 'shot' },
      apiImage(frameImage(last.frame_id, { boxes: true }), `The ${label}, boxed, in the frame from ${last.device_name}`, { class: 'frame' })),
    h('div', { class: 'facts' },
      h('h2', { id: 'answer-title' }, `Your ${label} was last seen by `, h('strong', {}, last.device_name)),
      h('p', { class: 'big-when' }, when(last.captured_at)),
      h('p', { class: 'hint' }, `Confidence ${percent(last.score)} · `, h('a', { href: `#/frame/${last.frame_id}` }, 'all boxes in this frame'))));
  answer.append(card);

  const history = await get(query('/detections', { label, limit: PREVIOUS + 1 }));
  const earlier = history.items.filter((item) => item.frame_id !== last.frame_id).slice(0, PREVIOUS);
  if (earlier.length) {
    answer.append(h('section', { class: 'previous' },
      h('h3', {}, 'Seen before'),
      h('ol', { class: 'strip' }, earlier.map((item) => h('li', {},
        h('a', { href: `#/frame/${item.frame_id}`, title: `${item.device_name}` },
          apiImage(frameImage(item.frame_id, { width: 240 }), `${label} at ${item.device_name}`),
          h('span', { class: 'caption' }, item.device_name, h('br'), when(item.captured_at))))))));
  }
}
