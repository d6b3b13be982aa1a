#!/usr/bin/env node
// Runs interop/webrtc/page.html in headless Chromium (playwright-core, Debian's /usr/bin/chromium)
// against a `natter webrtc` child process, passing the JSON lines between them.
//   node drive.js --as offer|answer --audio 0|1 --n 60 --natter '<command>' [--log DIR] [--ice JSON] [--policy relay] [--video 1]
//                 [--minframes N] [--reneg 1] [--mdns 1] [--stats 1]
// --mdns 1: Chromium with its default privacy settings (no --disable-features=WebRtcHideLocalIpsWithMdns,
// no fake media UI): a page without media permission signals only mDNS .local host candidates.
// --stats 1: sends {"cmd":"stats"} to natter at the end and keeps its stats event.
// Prints one line: REPORT {json} (page outcome, natter's events, non-JSON stdout lines), once natter has
// ended (SIGTERM when the page is done; natter prints its closing event lines first).
const { chromium } = require('playwright-core');
const { spawn } = require('child_process'); const fs = require('fs'); const path = require('path'); const http = require('http');
const a = {}; const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i += 2) a[argv[i].replace(/^--/, '')] = argv[i + 1];
const LOG = a.log; if (LOG) fs.mkdirSync(LOG, { recursive: true });
const html = fs.readFileSync(path.join(__dirname, 'page.html'));
const events = [], junk = [];

(async () => {
  const server = http.createServer((q, s) => { s.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' }); s.end(html); });
  await new Promise(r => server.listen(0, '127.0.0.1', r));
  const natter = spawn('bash', ['-c', 'exec ' + a.natter], { stdio: ['pipe', 'pipe', 'pipe'] });
  let exited = null, closed = false; natter.on('exit', c => { exited = c; }); natter.on('close', () => { closed = true; });
  natter.stdin.on('error', () => {});
  if (LOG) natter.stderr.pipe(fs.createWriteStream(path.join(LOG, 'natter.stderr')));
  const args = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
                '--disable-component-update', '--disable-sync', '--use-fake-device-for-media-stream'];
  if (a.mdns !== '1') args.push('--use-fake-ui-for-media-stream', '--disable-features=WebRtcHideLocalIpsWithMdns');
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args });
  let page, ready = false; const pending = []; const offerCandidates = [];
  const deliver = l => page.evaluate(t => window.fromNatter(t), l).catch(() => {});
  let buf = '';
  natter.stdout.on('data', d => {
    buf += d; let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i); buf = buf.slice(i + 1);
      if (!line.trim()) continue;
      let m; try { m = JSON.parse(line); } catch (e) { junk.push(line.slice(0, 100)); continue; }
      if (m.event) { events.push(m.event === 'message' ? { event: 'message', label: m.label } : m); continue; }
      if (ready) deliver(line); else pending.push(line);
    }
  });
  try {
    page = await (await browser.newContext()).newPage();
    if (LOG) page.on('console', m => fs.appendFileSync(path.join(LOG, 'page.log'), m.text() + '\n'));
    await page.exposeFunction('toNatter', t => {
      try { const m = JSON.parse(t); if (m.sdp) offerCandidates.push(...(m.sdp.match(/^a=candidate:.*$/gm) || []).map(c => c.split(' ')[4])); if (m.candidate) offerCandidates.push(m.candidate.split(' ')[4]); } catch (e) {}
      if (natter.stdin.writable) natter.stdin.write(t + '\n');
    });
    const q = new URLSearchParams({ as: a.as || 'offer', audio: a.audio || '0', n: a.n || '60', video: a.video || '0', ice: a.ice || '[]', policy: a.policy || 'all', minframes: a.minframes || '1', reneg: a.reneg || '0' });
    await page.goto(`http://127.0.0.1:${server.address().port}/?${q}`);
    ready = true; for (const l of pending.splice(0)) await deliver(l);
    const until = Date.now() + 60000;
    while (Date.now() < until && !(await page.evaluate(() => window.__finished)) && exited === null) await new Promise(r => setTimeout(r, 200));
    const rep = await page.evaluate(() => window.__report);
    delete rep.log;
    if (a.stats === '1' && exited === null && natter.stdin.writable) {
      natter.stdin.write('{"cmd":"stats"}\n');
      for (let i = 0; i < 25 && !events.some(e => e.event === 'stats'); i++) await new Promise(r => setTimeout(r, 200));
    }
    rep.offer_candidates = offerCandidates;
    if (!closed) { natter.kill('SIGTERM'); const t = Date.now() + 5000; while (!closed && Date.now() < t) await new Promise(r => setTimeout(r, 100)); }
    console.log('REPORT ' + JSON.stringify(Object.assign(rep, { events: events.filter(e => e.event !== 'message'), messages: events.length, junk, natter_exit: exited })));
  } finally {
    natter.stdin.end(); await browser.close().catch(() => {}); server.close();
    if (exited === null) natter.kill('SIGTERM');
  }
})().catch(e => { console.log('REPORT ' + JSON.stringify({ why: 'driver error ' + e })); process.exit(2); });
