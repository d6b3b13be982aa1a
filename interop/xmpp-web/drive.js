#!/usr/bin/env node
// Opens interop/xmpp-web/jingle.html in Debian's headless Chromium (playwright-core, no
// browser download) with a fake microphone; prints "RESULT <json>" once the page is done.
//   NODE_PATH=<dir>/node_modules node drive.js URL [TIMEOUT_S]
const { chromium } = require('playwright-core');
const [url, secs] = [process.argv[2], +(process.argv[3] || 40)];
const FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
  '--allow-loopback-in-peer-connection', '--disable-features=WebRtcHideLocalIpsWithMdns'];
(async () => {
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: FLAGS });
  let r;
  try {
    const page = await (await browser.newContext()).newPage();
    page.on('console', m => console.log('[page] ' + m.text()));
    await page.goto(url);
    await page.waitForFunction(() => window.__done === true, null, { timeout: secs * 1000 });
    r = await page.evaluate(() => window.__result);
  } finally { await browser.close(); }
  console.log('RESULT ' + JSON.stringify({ ok: r.ok, why: r.why, rtp_in: r.rtp_in, rtp_out: r.rtp_out, dtls: r.dtls }));
  process.exit(r.ok ? 0 : 1);
})().catch(e => { console.log('RESULT ' + JSON.stringify({ ok: false, why: String(e) })); process.exit(2); });
