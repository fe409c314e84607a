// The shell: hash routes (#/, #/find/LABEL, #/sightings, #/frame/ID, #/live,
// #/cameras, #/account), the sign-in page, and the live indicator.

import { api, registrationMode, session } from './api.js';
import { h, field, onSubmit } from './ui.js';
import { live } from './live.js';
import { homePage } from './home.js';
import { sightingsPage, framePage, livePage } from './sightings.js';
import { camerasPage } from './cameras.js';
import { accountPage } from './account.js';

const PAGES = {
  '': { title: 'Find', render: homePage },
  find: { title: 'Find', render: homePage },
  sightings: { title: 'Sightings', render: sightingsPage },
  frame: { title: 'Frame', render: framePage },
  live: { title: 'Live', render: livePage },
  cameras: { title: 'Cameras', render: camerasPage },
  account: { title: 'Account', render: accountPage },
};

const main = document.getElementById('main');
const nav = document.getElementById('nav');
let rendering = 0;

function route() {
  const [name = '', ...rest] = location.hash.replace(/^#\/?/, '').split('/');
  return { name, args: rest.map(decodeURIComponent) };
}

async function render() {
  const current = ++rendering;
  const signedIn = Boolean(session.token);
  nav.hidden = !signedIn;
  document.body.classList.toggle('signed-in', signedIn);
  if (!signedIn) {
    live.stop();
    document.title = 'Sign in · lastseen';
    main.replaceChildren(authPage());
    return;
  }
  live.start();
  const { name, args } = route();
  const page = PAGES[name] || PAGES[''];
  document.title = `${page.title} · lastseen`;
  for (const link of nav.querySelectorAll('a')) {
    const target = link.getAttribute('href').replace(/^#\/?/, '');
    const here = target === name || (target === '' && name === 'find');
    if (here) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  const signOut = h('button', { type: 'button', class: 'link sign-out', onclick: logout }, 'Sign out');
  const view = h('div', { class: 'page' });
  main.replaceChildren(view, h('footer', { class: 'foot' }, signOut));
  try {
    await page.render(view, ...args);
  } catch (error) {
    if (current === rendering) view.append(h('p', { class: 'error', role: 'alert' }, error.message));
  }
}

async function logout() {
  try {
    await api('POST', '/auth/logout');
  } finally {
    session.clear();
  }
}

// #/signup/CODE opens sign-up with an invite code filled in.
function authPage() {
  const { name, args } = route();
  const signup = name === 'signup';
  const hint = signup ? h('p', { class: 'hint' }, 'Usernames: 3–32 lowercase letters, digits, ".", "_" or "-". Passwords: at least 10 characters.') : null;
  const switchLine = h('p', { class: 'switch' },
    signup ? 'Have an account? ' : 'New here? ',
    h('a', { href: signup ? '#/' : '#/signup' }, signup ? 'Sign in' : 'Create an account'));
  const form = h('form', { class: 'card auth', 'aria-labelledby': 'auth-title' },
    h('h1', { id: 'auth-title' }, signup ? 'Create your account' : 'Sign in'),
    h('p', { class: 'lead' }, 'Where and when did your cameras last see your cup, your keys, your bike?'),
    field('Username', { name: 'username', autocomplete: 'username', required: true, minlength: 3, maxlength: 32, autocapitalize: 'none', spellcheck: 'false' }),
    field('Password', { name: 'password', type: 'password', required: true, minlength: signup ? 10 : 1, autocomplete: signup ? 'new-password' : 'current-password' }),
    hint,
    h('button', { type: 'submit', class: 'primary' }, signup ? 'Sign up' : 'Sign in'),
    switchLine);
  // Invite-only: sign-up asks for the code. Closed: no sign-up at all.
  registrationMode().then((mode) => {
    if (mode === 'closed') {
      switchLine.hidden = true;
      if (signup) {
        form.replaceChildren(
          h('h1', { id: 'auth-title' }, 'Sign-up is closed'),
          h('p', {}, 'Accounts here are made by the operator. Ask them for one.'),
          h('p', { class: 'switch' }, h('a', { href: '#/' }, 'Sign in')));
      }
    } else if (mode === 'invite' && signup) {
      hint.before(field('Invite code', { name: 'invite', required: true, value: args[0], autocomplete: 'off', autocapitalize: 'none', spellcheck: 'false' }));
    }
  });
  onSubmit(form, async (data) => {
    const credentials = { username: String(data.get('username')).trim(), password: data.get('password') };
    if (signup) {
      const account = { ...credentials };
      if (data.has('invite')) account.invite = String(data.get('invite')).trim();
      await api('POST', '/auth/register', account);
    }
    const login = await api('POST', '/auth/login', credentials);
    session.set(login.access_token);
    if (location.hash === '#/' || location.hash === '') render();
    else location.hash = '#/';
  });
  queueMicrotask(() => form.querySelector('input')?.focus());
  return form;
}

const dot = document.getElementById('live-dot');
live.addEventListener('state', (event) => {
  dot.dataset.state = event.detail;
  dot.title = `live feed: ${event.detail}`;
});

window.addEventListener('hashchange', () => {
  render();
  main.focus({ preventScroll: true });
});
window.addEventListener('lastseen:signed-out', () => render());
// Another tab signed in or out.
window.addEventListener('storage', () => render());
render();
