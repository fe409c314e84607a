// Account: change password, log out everywhere, delete the account.

import { api, session } from './api.js';
import { field, h, onSubmit, toast } from './ui.js';

export async function accountPage(view) {
  const password = h('form', { class: 'card', 'aria-labelledby': 'pw-title' },
    h('h2', { id: 'pw-title' }, 'Change password'),
    field('Current password', { name: 'old_password', type: 'password', required: true, autocomplete: 'current-password' }),
    field('New password', { name: 'new_password', type: 'password', required: true, minlength: 10, autocomplete: 'new-password' }),
    h('p', { class: 'hint' }, 'Other devices signed in to this account will be signed out.'),
    h('button', { type: 'submit', class: 'primary' }, 'Change password'));
  onSubmit(password, async (data) => {
    const answer = await api('POST', '/auth/password', {
      old_password: data.get('old_password'),
      new_password: data.get('new_password'),
    });
    session.set(answer.access_token);
    password.reset();
    toast('Password changed');
  });

  const everywhere = h('section', { class: 'card', 'aria-labelledby': 'out-title' },
    h('h2', { id: 'out-title' }, 'Sessions'),
    h('p', {}, 'Sign out on every browser and phone, this one included.'),
    h('button', {
      type: 'button', class: 'secondary',
      onclick: async () => {
        try { await api('POST', '/auth/logout-all'); session.clear(); } catch (error) { toast(error.message); }
      },
    }, 'Log out everywhere'));

  const remove = h('form', { class: 'card danger-zone', 'aria-labelledby': 'del-title' },
    h('h2', { id: 'del-title' }, 'Delete account'),
    h('p', {}, 'Deletes your cameras, frames, images and detections for good.'),
    field('Password', { name: 'password', type: 'password', required: true, autocomplete: 'current-password' }),
    h('div', { class: 'field check' },
      h('input', { id: 'del-sure', name: 'sure', type: 'checkbox', required: true }),
      h('label', { for: 'del-sure' }, 'I understand this cannot be undone')),
    h('button', { type: 'submit', class: 'danger' }, 'Delete my account'));
  onSubmit(remove, async (data) => {
    await api('DELETE', '/account', { password: data.get('password') });
    session.clear();
  });

  view.append(h('h1', {}, 'Account'), password, everywhere, remove);
}
