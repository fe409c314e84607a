// Small DOM helpers shared by the pages. Text always goes in as text nodes,
// never as HTML, so nothing from the API can inject markup.

import { imageUrl } from './api.js';

/** h('button', {class: 'primary', onclick: fn}, 'Save') */
export function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on')) element.addEventListener(key.slice(2), value);
    else if (key === 'class') element.className = value;
    else if (key === 'value') element.value = value;
    else if (value === true) element.setAttribute(key, '');
    else element.setAttribute(key, value);
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

const UNITS = [
  ['year', 365 * 24 * 3600],
  ['month', 30 * 24 * 3600],
  ['week', 7 * 24 * 3600],
  ['day', 24 * 3600],
  ['hour', 3600],
  ['minute', 60],
  ['second', 1],
];
const relative = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });

/** "3 minutes ago" */
export function ago(iso, now = Date.now()) {
  const seconds = Math.round((new Date(iso).getTime() - now) / 1000);
  if (Math.abs(seconds) < 10) return 'just now';
  for (const [unit, size] of UNITS) {
    if (Math.abs(seconds) >= size) return relative.format(Math.trunc(seconds / size), unit);
  }
  return 'just now';
}

const exact = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });

export const exactTime = (iso) => exact.format(new Date(iso));

/** <time>3 minutes ago</time> with the exact time beside it. */
export function when(iso) {
  return h('span', { class: 'when' },
    h('time', { datetime: iso, 'data-ago': iso }, ago(iso)),
    h('span', { class: 'exact' }, exactTime(iso)));
}

// Relative times stay true while the page is open.
setInterval(() => {
  for (const time of document.querySelectorAll('time[data-ago]')) {
    time.textContent = ago(time.dataset.ago);
  }
}, 30_000);

/** An <img> that loads an API image with the session token. */
export function apiImage(path, alt, attrs = {}) {
  const image = h('img', { alt, class: 'loading', decoding: 'async', ...attrs });
  imageUrl(path).then(
    (url) => { image.src = url; image.classList.remove('loading'); },
    () => { image.classList.replace('loading', 'broken'); image.alt = `${alt} (image unavailable)`; },
  );
  return image;
}

/** The API's message, shown where the user is looking. */
export function errorBox(error) {
  return h('p', { class: 'error', role: 'alert' }, error.message || String(error));
}

export function empty(...children) {
  return h('div', { class: 'empty' }, ...children);
}

export function toast(message) {
  const box = document.getElementById('toast');
  box.textContent = message;
  box.classList.add('shown');
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => box.classList.remove('shown'), 4000);
}

/**
 * Runs `action` for a form submit: disables the button, shows the API's
 * error message in the form's alert area, and clears it on success.
 */
export function onSubmit(form, action) {
  const alert = h('p', { class: 'error', role: 'alert', hidden: true });
  form.append(alert);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const buttons = form.querySelectorAll('button');
    buttons.forEach((b) => { b.disabled = true; });
    alert.hidden = true;
    try {
      await action(new FormData(form));
    } catch (error) {
      alert.textContent = error.message;
      alert.hidden = false;
    } finally {
      buttons.forEach((b) => { b.disabled = false; });
    }
  });
  return form;
}

/** A labelled input: label text, then the input, for forms. */
export function field(label, attrs) {
  const id = attrs.id || `f-${attrs.name}-${Math.random().toString(36).slice(2, 8)}`;
  return h('div', { class: 'field' },
    h('label', { for: id }, label),
    h('input', { id, ...attrs }));
}

/** A button that asks once more before doing something that cannot be undone. */
export function confirmButton(label, confirmLabel, action, attrs = {}) {
  const button = h('button', { type: 'button', class: 'danger', ...attrs }, label);
  let armed = false;
  button.addEventListener('click', async () => {
    if (!armed) {
      armed = true;
      button.textContent = confirmLabel;
      button.classList.add('armed');
      setTimeout(() => {
        armed = false;
        button.textContent = label;
        button.classList.remove('armed');
      }, 5000);
      return;
    }
    button.disabled = true;
    try {
      await action();
    } catch (error) {
      toast(error.message);
      button.disabled = false;
    }
  });
  return button;
}

export function percent(score) {
  return `${Math.round(score * 100)}%`;
}
