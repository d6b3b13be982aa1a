#!/usr/bin/env node
// Opens interop/xmpp-web/jingle.html in Debian's headless Chromium (playwright-core, no
// browser download) with a fake microphone; prints "RESULT <json>" once the page is done.
//   NODE_PATH=<dir>/node_modules node drive.js URL [TIMEOUT_S] [--mic IN.wav] [--capture OUT.wav]
// --mic: Chromium's fake microphone plays this WAV (looped) instead of its own beeps.
// --capture: write the audio the page received from its peer (mono 16-bit) to this WAV.
const fs = require('fs');
const { chromium } = require('playwright-core');
const args = process.argv.slice(2);
const opt = name => { const i = args.indexOf(name); return i >= 0 ? args.splice(i, 2)[1] : undefined; };
const mic = opt('--mic'), capture = opt('--capture');
const [url, secs] = [args[0], +(args[1] || 40)];
const FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
  '--autoplay-policy=no-user-gesture-required',
  '--allow-loopback-in-peer-connection', '--disable-features=WebRtcHideLocalIpsWithMdns']
  .concat(mic ? ['--use-file-for-fake-audio-capture=' + mic] : []);
function wav(path, rate, pcm) { // pcm: Buffer of little-endian int16 mono
  const h = Buffer.alloc(44);
  h.write('RIFF', 0); h.writeUInt32LE(36 + pcm.length, 4); h.write('WAVEfmt ', 8);
  h.writeUInt32LE(16, 16); h.writeUInt16LE(1, 20); h.writeUInt16LE(1, 22); h.writeUInt32LE(rate, 24);
  h.writeUInt32LE(rate * 2, 28); h.writeUInt16LE(2, 32); h.writeUInt16LE(16, 34);
  h.write('data', 36); h.writeUInt32LE(pcm.length, 40);
  fs.writeFileSync(path, Buffer.concat([h, pcm]));
}
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
  if (capture) wav(capture, r.in_rate || 48000, Buffer.from(r.in_pcm || '', 'base64'));
  console.log('RESULT ' + JSON.stringify({ ok: r.ok, why: r.why, rtp_in: r.rtp_in, rtp_out: r.rtp_out, dtls: r.dtls,
    setup_ms: r.setup_ms, in_s: r.in_s, in_rms_dbfs: r.in_rms_dbfs, in_peak_hz: r.in_peak_hz, audio_level: r.audio_level,
    audio_energy: r.audio_energy }));
  process.exit(r.ok ? 0 : 1);
})().catch(e => { console.log('RESULT ' + JSON.stringify({ ok: false, why: String(e) })); process.exit(2); });
