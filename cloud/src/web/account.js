// Account: change password, log out everywhere, invite someone (invite-only
// registration), delete the account.

import { api, registrationMode, session } from './api.js';
import { exactTime, field, h, onSubmit, toast } from './ui.js';

/** Invite-only registration: a single-use code and its sign-up link. */
function inviteCard() {
  const result = h('div', { 'aria-live': 'polite' });
  const card = h('section', { class: 'card', 'aria-labelledby': 'inv-title' },
    h('h2', { id: 'inv-title' }, 'Invite someone'),
    h('p', {}, 'Sign-up here needs an invite code. Each code makes one account and expires.'),
    h('button', {
      type: 'button', class: 'secondary',
      onclick: async () => {
        try {
          const invite = await api('POST', '/account/invites');
          const link = `${location.origin}${location.pathname}#/signup/${invite.code}`;
          result.replaceChildren(
            field('Invite code', { name: 'code', value: invite.code, readonly: true }),
            field('Sign-up link', { name: 'link', value: link, readonly: true }),
            h('p', { class: 'hint' }, `Shown only now; usable once, until ${exactTime(invite.expires_at)}.`));
        } catch (error) { toast(error.message); }
      },
    }, 'Make an invite code'),
    result);
  return card;
}

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
  if ((await registrationMode()) === 'invite') everywhere.after(inviteCard());
}
