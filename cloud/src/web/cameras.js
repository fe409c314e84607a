// Cameras: add one (token shown once, agent config to download), list with
// state, last sighting thumbnail and counters; rename, rotate, revoke,
// delete, and edit its gate settings.

import { api, frameImage, get } from './api.js';
import { apiImage, confirmButton, empty, field, h, onSubmit, toast, when } from './ui.js';

export async function camerasPage(view) {
  const list = h('ul', { class: 'cameras' });
  const added = h('div', { 'aria-live': 'polite' });
  const add = h('form', { class: 'card add-camera', 'aria-labelledby': 'add-title' },
    h('h2', { id: 'add-title' }, 'Add a camera'),
    field('Name', { name: 'name', required: true, maxlength: 64, placeholder: 'Kitchen' }),
    h('button', { type: 'submit', class: 'primary' }, 'Add camera'));
  onSubmit(add, async (data) => {
    const device = await api('POST', '/devices', { name: String(data.get('name')).trim() });
    add.reset();
    added.replaceChildren(tokenCard(device.id, device.name, device.token, 'Camera added'));
    await refresh();
  });
  view.append(h('h1', {}, 'Cameras'), add, added, list);

  async function refresh() {
    const devices = await get('/devices');
    if (!devices.items.length) {
      list.replaceChildren(h('li', {}, empty(h('p', {}, 'No cameras yet: add one above, then run the agent with its config file.'))));
      return;
    }
    list.replaceChildren(...devices.items.map((device) => cameraCard(device, refresh, added)));
  }
  await refresh();
}

function agentConfig(id, token) {
  return [
    '# lastseen-agent configuration: run with  lastseen-agent --config agent.toml',
    '[cloud]',
    `device_id = "${id}"`,
    `token = "${token}"`,
    'transport = "https"',
    `http_url = "${location.origin}"`,
    '',
    '[source]',
    'kind = "synthetic"                  # "dir" | "http" | "v4l2" | "synthetic"',
    '',
  ].join('\n');
}

/** The token, shown this once, with the agent config as a download. */
function tokenCard(id, name, token, title) {
  const blob = new Blob([agentConfig(id, token)], { type: 'application/toml' });
  const download = h('a', { class: 'button primary', href: URL.createObjectURL(blob), download: 'agent.toml' }, 'Download agent.toml');
  const tokenField = h('textarea', { readonly: true, rows: 3, class: 'mono token', id: `token-${id}`, 'aria-label': `Device token of ${name}` }, token);
  const copy = h('button', { type: 'button', class: 'secondary' }, 'Copy token');
  copy.addEventListener('click', async () => {
    try { await navigator.clipboard.writeText(token); toast('Token copied'); } catch { tokenField.select(); }
  });
  return h('section', { class: 'card token-card', role: 'status' },
    h('h2', {}, `${title}: ${name}`),
    h('p', {}, h('strong', {}, 'This token is shown only once.'), ' Put it in the agent\'s config now; it can be replaced later with "Rotate token".'),
    tokenField,
    h('div', { class: 'actions' }, download, copy));
}

function stateOf(device) {
  if (device.revoked_at) return ['revoked', 'Revoked'];
  if (!device.status) return ['never', 'No status yet'];
  return device.status.state === 'online' ? ['online', 'Online'] : ['offline', 'Offline'];
}

function cameraCard(device, refresh, added) {
  const [state, stateText] = stateOf(device);
  const thumb = h('div', { class: 'thumb' }, device.last_frame_id
    ? h('a', { href: `#/frame/${device.last_frame_id}` },
      apiImage(frameImage(device.last_frame_id, { width: 320 }), `Last frame from ${device.name}`))
    : h('span', { class: 'hint' }, 'No frames yet'));
  const counters = Object.entries(device.status?.counters || {});
  const details = h('div', { class: 'camera-body' });
  const card = h('li', { class: 'card camera', 'data-device': device.id },
    thumb,
    h('div', { class: 'camera-main' },
      h('h2', {}, device.name, ' ', h('span', { class: `badge ${state}` }, stateText)),
      device.last_status_at ? h('p', { class: 'hint' }, 'Last report ', when(device.last_status_at)) : null,
      device.status?.spool_depth != null ? h('p', { class: 'hint' }, `${device.status.spool_depth} frames waiting on the device`) : null,
      counters.length
        ? h('dl', { class: 'counters' }, counters.map(([name, value]) => [h('dt', {}, name.replaceAll('_', ' ')), h('dd', {}, value)]))
        : null,
      h('div', { class: 'actions' },
        h('button', { type: 'button', class: 'secondary', onclick: () => renameForm(device, details, refresh) }, 'Rename'),
        h('button', { type: 'button', class: 'secondary', onclick: () => settingsForm(device, details) }, 'Gate settings'),
        device.revoked_at ? null : h('button', {
          type: 'button', class: 'secondary',
          onclick: async () => {
            try {
              const rotated = await api('POST', `/devices/${device.id}/rotate`);
              added.replaceChildren(tokenCard(device.id, device.name, rotated.token, 'New token'));
              added.scrollIntoView({ block: 'nearest' });
            } catch (error) { toast(error.message); }
          },
        }, 'Rotate token'),
        device.revoked_at ? null : confirmButton('Revoke', 'Really revoke?', async () => {
          await api('POST', `/devices/${device.id}/revoke`);
          toast(`${device.name} can no longer send frames`);
          await refresh();
        }),
        confirmButton('Delete', 'Delete with all its frames?', async () => {
          await api('DELETE', `/devices/${device.id}`);
          toast(`${device.name} deleted`);
          await refresh();
        })),
      details));
  return card;
}

function renameForm(device, details, refresh) {
  const form = h('form', { class: 'inline-form' },
    field('New name', { name: 'name', required: true, maxlength: 64, value: device.name }),
    h('div', { class: 'actions' },
      h('button', { type: 'submit', class: 'primary' }, 'Save name'),
      h('button', { type: 'button', class: 'link', onclick: () => details.replaceChildren() }, 'Cancel')));
  onSubmit(form, async (data) => {
    await api('PATCH', `/devices/${device.id}`, { name: String(data.get('name')).trim() });
    toast('Renamed');
    await refresh();
  });
  details.replaceChildren(form);
  form.querySelector('input').select();
}

/** One input per setting, built from the settings the API returns. */
async function settingsForm(device, details) {
  let settings;
  try {
    settings = await get(`/devices/${device.id}/settings`);
  } catch (error) { toast(error.message); return; }
  const inputs = [];
  const group = (path, value) => {
    if (value !== null && typeof value === 'object') {
      return h('fieldset', {}, h('legend', {}, path.at(-1).replaceAll('_', ' ')),
        Object.entries(value).map(([key, inner]) => group([...path, key], inner)));
    }
    const name = path.join('.');
    const id = `set-${device.id}-${name}`;
    const input = typeof value === 'boolean'
      ? h('input', { id, type: 'checkbox', checked: value })
      : h('input', { id, type: 'number', step: 'any', value, required: true });
    inputs.push([path, input, typeof value]);
    return h('div', { class: typeof value === 'boolean' ? 'field check' : 'field' },
      h('label', { for: id }, path.at(-1).replaceAll('_', ' ')), input);
  };
  const form = h('form', { class: 'inline-form settings' },
    h('p', { class: 'hint' }, 'Sent to the camera as remote config (over MQTT at once, over HTTPS when it next asks).'),
    Object.entries(settings).map(([key, value]) => group([key], value)),
    h('div', { class: 'actions' },
      h('button', { type: 'submit', class: 'primary' }, 'Save settings'),
      h('button', { type: 'button', class: 'link', onclick: () => details.replaceChildren() }, 'Cancel')));
  onSubmit(form, async () => {
    const body = {};
    for (const [path, input, type] of inputs) {
      let target = body;
      for (const key of path.slice(0, -1)) target = target[key] ??= {};
      target[path.at(-1)] = type === 'boolean' ? input.checked : Number(input.value);
    }
    await api('PUT', `/devices/${device.id}/settings`, body);
    toast('Settings saved');
    details.replaceChildren();
  });
  details.replaceChildren(form);
}
