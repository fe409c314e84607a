// The browser test of the lastseen page: Debian's Chromium, headless, driven
// with playwright-core against a running cloud.
//
//   node web-tests/e2e.mjs <base-url> <fixtures-dir> <screenshots-dir>
//
// <fixtures-dir> holds coffee.jpg, astronaut.jpg, chelsea.jpg and dog.jpg
// (the test in cloud/tests/api/web.rs writes them). Exits non-zero, naming
// the step, on the first failure. Screenshots of every page, desktop
// (1280x800) and phone (390x844), go to <screenshots-dir>.

import { readFile, mkdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';

const CHROMIUM = process.env.LASTSEEN_CHROMIUM || '/usr/bin/chromium';
const STEP_TIMEOUT_MS = 30_000;
const PHONE_WIDTH = 390;
const PASSWORD = 'correct horse battery staple';
const [base, fixtures, shots] = process.argv.slice(2);

if (!base || !fixtures || !shots) {
  console.error('usage: node e2e.mjs <base-url> <fixtures-dir> <screenshots-dir>');
  process.exit(2);
}
if (!existsSync(CHROMIUM)) {
  console.error(`no Chromium at ${CHROMIUM}: run scripts/setup --tests`);
  process.exit(1);
}

let step = 'start';
function check(ok, message) {
  if (!ok) throw new Error(message);
}

async function send(deviceToken, seq, name, minutesAgo) {
  const jpeg = await readFile(path.join(fixtures, name));
  const capturedAt = new Date(Date.now() - minutesAgo * 60_000).toISOString();
  const response = await fetch(`${base}/api/v1/frames`, {
    method: 'POST',
    headers: {
      Authorization: `Bearer ${deviceToken}`,
      'Content-Type': 'image/jpeg',
      'X-Frame-Seq': String(seq),
      'X-Captured-At': capturedAt,
    },
    body: jpeg,
  });
  const text = await response.text();
  check(response.status === 201, `POST /frames ${name}: ${response.status} ${text}`);
  return JSON.parse(text);
}

/** The RGB of pixel (x, y) of an <img> at its natural size. */
async function pixel(locator, x, y) {
  return locator.evaluate((image, [px, py]) => {
    const canvas = document.createElement('canvas');
    canvas.width = image.naturalWidth;
    canvas.height = image.naturalHeight;
    const context = canvas.getContext('2d');
    context.drawImage(image, 0, 0);
    return Array.from(context.getImageData(px, py, 1, 1).data.slice(0, 3));
  }, [x, y]);
}

// page.waitForFunction evaluates strings, which the page's CSP forbids
// (no 'unsafe-eval'), so conditions are polled from here.
async function until(condition, what) {
  const deadline = Date.now() + STEP_TIMEOUT_MS;
  while (!(await condition())) {
    check(Date.now() < deadline, `timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function loaded(locator) {
  await locator.waitFor();
  await until(() => locator.evaluate(
    (image) => image.complete && image.naturalWidth > 0 && !image.classList.contains('loading'),
  ), 'an image to load');
}

async function shoot(page, name) {
  await page.waitForLoadState('networkidle');
  // Let images that are still being fetched or decoded finish.
  await until(() => page.evaluate(
    () => [...document.images].every((i) => i.complete && !i.classList.contains('loading')),
  ), 'the images to load');
  await page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });
}

async function run() {
  await mkdir(shots, { recursive: true });
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
  const problems = [];
  try {
    const desktop = await browser.newContext({ viewport: { width: 1280, height: 800 }, acceptDownloads: true });
    desktop.setDefaultTimeout(STEP_TIMEOUT_MS);
    const page = await desktop.newPage();
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
    page.on('console', (message) => {
      // Failed API calls the test makes on purpose log "Failed to load resource".
      if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) {
        problems.push(`console: ${message.text()}`);
      }
    });

    step = 'the sign-in page loads and shows the API error for a bad login';
    await page.goto(base);
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    await page.getByLabel('Username').fill('nobody-here');
    await page.getByLabel('Password').fill('not the password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    const alert = page.locator('form [role=alert]');
    await alert.filter({ hasText: /\S/ }).waitFor();
    check(!(await alert.textContent()).includes('http_'), 'the alert shows the API message');
    await shoot(page, 'desktop-signin');

    step = 'sign up by keyboard';
    const username = `e2e-${Date.now().toString(36)}`;
    await page.getByRole('link', { name: 'Create an account' }).click();
    await page.getByRole('heading', { name: 'Create your account' }).waitFor();
    await page.getByLabel('Username').focus();
    await page.keyboard.type(username);
    await page.keyboard.press('Tab');
    await page.keyboard.type(PASSWORD);
    await page.keyboard.press('Enter');
    await page.getByText('Nothing seen yet.').waitFor();
    await shoot(page, 'desktop-home-empty');

    step = 'the session survives a reload';
    await page.reload();
    await page.getByText('Nothing seen yet.').waitFor();

    step = 'sign out, then sign in again';
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    await page.getByLabel('Username').fill(username);
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByText('Nothing seen yet.').waitFor();

    step = 'no cameras yet, then add one: its token and agent config are shown once';
    await page.getByRole('link', { name: 'Cameras' }).click();
    await page.getByText('No cameras yet').waitFor();
    await page.getByLabel('Name').fill('Kitchen');
    await page.getByRole('button', { name: 'Add camera' }).click();
    const tokenBox = page.getByLabel('Device token of Kitchen');
    await tokenBox.waitFor();
    const deviceToken = await tokenBox.inputValue();
    check(deviceToken.split('.').length === 3, `a JWT is shown: ${deviceToken}`);
    const download = page.getByRole('link', { name: 'Download agent.toml' });
    check((await download.getAttribute('download')) === 'agent.toml', 'the config downloads as agent.toml');
    const [saved] = await Promise.all([page.waitForEvent('download'), download.click()]);
    check(saved.suggestedFilename() === 'agent.toml', `downloaded ${saved.suggestedFilename()}`);
    const config = await readFile(await saved.path(), 'utf8');
    check(config.includes(`token = "${deviceToken}"`) && config.includes('device_id = "'), `agent.toml: ${config}`);
    const card = page.locator('li.camera').filter({ hasText: 'Kitchen' });
    await card.getByText('No status yet').waitFor();
    await shoot(page, 'desktop-cameras');

    step = 'send the fixture images as that camera';
    await send(deviceToken, 1, 'coffee.jpg', 20);
    await send(deviceToken, 2, 'astronaut.jpg', 10);
    await send(deviceToken, 3, 'chelsea.jpg', 6);
    const latest = await send(deviceToken, 4, 'coffee.jpg', 3);
    check(latest.detections.some((d) => d.label === 'cup'), 'the coffee frame has a cup');

    step = 'the camera reports its status: online, with its counters';
    const status = await fetch(`${base}/api/v1/device/status`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${deviceToken}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ state: 'online', counters: { captured: 120, dropped_change: 110, sent: 4 }, spool_depth: 0 }),
    });
    check(status.status === 204, `POST /device/status: ${status.status}`);
    await page.reload();
    await card.getByText('Online').waitFor();
    await card.getByText('dropped change').waitFor();
    check((await card.locator('dd').allTextContents()).includes('110'), 'the counters are shown');

    step = 'edit the gate settings of the camera';
    await card.getByRole('button', { name: 'Gate settings' }).click();
    await card.getByLabel('heartbeat secs').fill('60');
    await card.getByRole('button', { name: 'Save settings' }).click();
    await page.getByText('Settings saved').waitFor();
    const userToken = await page.evaluate(() => localStorage.getItem('lastseen.token'));
    const deviceId = await card.getAttribute('data-device');
    const settings = await fetch(`${base}/api/v1/devices/${deviceId}/settings`, {
      headers: { Authorization: `Bearer ${userToken}` },
    }).then((r) => r.json());
    check(settings.heartbeat_secs === 60, `the settings were saved: ${JSON.stringify(settings)}`);

    step = 'search "cup": the coffee image with its box, the camera and when';
    await page.getByRole('link', { name: 'Find' }).click();
    const search = page.getByLabel('Where is my');
    await search.fill('cup');
    await search.press('Enter');
    const answer = page.locator('article.sighting');
    await answer.getByRole('heading', { name: /cup was last seen by Kitchen/ }).waitFor();
    await answer.getByText('3 minutes ago').waitFor();
    const boxed = answer.locator('img.frame');
    await loaded(boxed);
    const cup = latest.detections.find((d) => d.label === 'cup');
    const [, y1, x2] = cup.box.map(Math.round);
    // The first (highest scoring) box is drawn in red (query/render.rs); its
    // top edge, right of its caption.
    const edge = await pixel(boxed, x2 - 10, y1 + 1);
    check(edge[0] > 200 && edge[1] < 120 && edge[2] < 120, `the cup's box edge is red: ${edge}`);
    const strip = page.locator('.previous .strip li');
    check((await strip.count()) === 1, `one earlier cup sighting: ${await strip.count()}`);
    await loaded(strip.locator('img').first());
    await shoot(page, 'desktop-home');

    step = 'sightings: a filtered gallery and a frame with all its boxes';
    await page.getByRole('link', { name: 'Sightings' }).click();
    const tiles = page.locator('.gallery .tile');
    await tiles.first().waitFor();
    check((await tiles.count()) >= 5, `every detection is listed: ${await tiles.count()}`);
    await page.getByLabel('Object').selectOption('cup');
    await page.getByRole('button', { name: 'Show', exact: true }).click();
    await until(async () => (await tiles.count()) === 2, 'the two cup sightings');
    await shoot(page, 'desktop-sightings');
    await tiles.first().getByRole('link').click();
    const rows = page.locator('table.detections tbody tr');
    await rows.first().waitFor();
    const rowText = await rows.allTextContents();
    check(rowText.some((r) => r.includes('cup')) && rowText.some((r) => r.includes('dining table')), `frame rows: ${rowText}`);
    await loaded(page.locator('.frame-view img'));
    await shoot(page, 'desktop-frame');

    step = 'a new detection arrives live, without a reload';
    await page.getByRole('link', { name: 'Live' }).click();
    await page.getByText('Connected: new frames appear as they arrive.').waitFor();
    const dog = await send(deviceToken, 5, 'dog.jpg', 0);
    const arrived = page.locator(`.live-list [data-frame="${dog.frame_id}"]`);
    await arrived.waitFor();
    check((await arrived.textContent()).includes('dog'), 'the live tile names the dog');
    await loaded(arrived.locator('img'));
    await shoot(page, 'desktop-live');

    step = 'the camera shows its last frame';
    await page.getByRole('link', { name: 'Cameras' }).click();
    await loaded(card.locator('.thumb img'));

    step = 'account page';
    await page.getByRole('link', { name: 'Account' }).click();
    await page.getByRole('heading', { name: 'Delete account' }).waitFor();
    await shoot(page, 'desktop-account');

    step = 'phone-size screenshots of every page';
    const token = await page.evaluate(() => localStorage.getItem('lastseen.token'));
    const phone = await browser.newContext({
      viewport: { width: PHONE_WIDTH, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2,
    });
    phone.setDefaultTimeout(STEP_TIMEOUT_MS);
    const mobile = await phone.newPage();
    mobile.on('pageerror', (error) => problems.push(`phone page error: ${error.message}`));
    await mobile.goto(base);
    await mobile.getByRole('heading', { name: 'Sign in' }).waitFor();
    await shoot(mobile, 'phone-signin');
    await mobile.evaluate((t) => localStorage.setItem('lastseen.token', t), token);
    for (const [name, hash, ready] of [
      ['home', '#/find/cup', 'article.sighting img.frame'],
      ['sightings', '#/sightings', '.gallery .tile img'],
      ['frame', `#/frame/${latest.frame_id}`, '.frame-view img'],
      ['live', '#/live', '.live-state[data-state="live"]'],
      ['cameras', '#/cameras', 'li.camera .thumb img'],
      ['account', '#/account', '.danger-zone'],
    ]) {
      await mobile.goto(`${base}/${hash}`);
      await mobile.locator(ready).first().waitFor();
      // A mobile viewport grows to fit wide content, so compare with the phone's width.
      const width = await mobile.evaluate(() => document.documentElement.scrollWidth);
      check(width <= PHONE_WIDTH, `${name} fits the phone: ${width}px wide`);
      await shoot(mobile, `phone-${name}`);
    }
    await phone.close();

    step = 'rename the camera';
    await page.getByRole('link', { name: 'Cameras' }).click();
    await card.getByRole('button', { name: 'Rename' }).click();
    await page.getByLabel('New name').fill('Hall');
    await page.getByRole('button', { name: 'Save name' }).click();
    const hall = page.locator('li.camera').filter({ hasText: 'Hall' });
    await hall.getByRole('heading', { name: /Hall/ }).waitFor();

    step = 'delete the camera (asks once more)';
    await hall.getByRole('button', { name: 'Delete', exact: true }).click();
    await hall.getByRole('button', { name: 'Delete with all its frames?' }).click();
    await page.getByText('No cameras yet').waitFor();

    step = 'delete the account (with confirmation)';
    await page.getByRole('link', { name: 'Account' }).click();
    const danger = page.locator('.danger-zone');
    await danger.getByLabel('Password').fill(PASSWORD);
    await danger.getByLabel('I understand this cannot be undone').check();
    await danger.getByRole('button', { name: 'Delete my account' }).click();
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    const login = await fetch(`${base}/api/v1/auth/login`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ username, password: PASSWORD }),
    });
    check(login.status === 401, `the deleted account cannot sign in: ${login.status}`);

    step = 'no script errors or CSP violations';
    check(problems.length === 0, problems.join('\n'));
  } finally {
    await browser.close();
  }
}

try {
  await run();
  console.log(`e2e: all steps passed; screenshots in ${shots}`);
} catch (error) {
  console.error(`e2e: FAILED at step "${step}":\n${error.stack || error}`);
  process.exit(1);
}
