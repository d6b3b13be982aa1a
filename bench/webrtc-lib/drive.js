#!/usr/bin/env node
// node drive.js --mode chromium|natter [--natter '<cmd>'] [--mb 16] [--size 65536] [--win 8]: prints RESULT {json}.
// Signaling between the page and natter runs over this script's HTTP server (page -> natter:
// POST /signal, natter -> page: the EventSource /events), about a millisecond each way; the
// page trickles its candidates, so neither side waits for the other's gathering.
// CPU: utime+stime of natter and of Chromium's whole process tree, from the page's `mark`
// (transfer starts) to the end; cpu_s_per_mb divides the sum by the MB sent one way.
const { chromium } = require('playwright-core'); const { spawn } = require('child_process');
const fs = require('fs'); const path = require('path'); const http = require('http');
const a = {}; const v = process.argv.slice(2); for (let i = 0; i < v.length; i += 2) a[v[i].slice(2)] = v[i + 1];
const html = fs.readFileSync(path.join(__dirname, 'page.html'));
const TICK = 100; // USER_HZ
function cpuOf(pid) {
  try { const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8'); const s = f.slice(f.lastIndexOf(')') + 2).split(' ');
    return (+s[11] + +s[12]) / TICK; } catch (e) { return 0; }
}
function tree(pid) {
  // Every process whose parent chain reaches pid (Chromium's renderer, GPU, network...).
  const parent = {};
  for (const d of fs.readdirSync('/proc')) { if (!/^\d+$/.test(d)) continue;
    try { const f = fs.readFileSync(`/proc/${d}/stat`, 'utf8'); parent[+d] = +f.slice(f.lastIndexOf(')') + 2).split(' ')[1]; } catch (e) {} }
  const out = [pid];
  for (let i = 0; i < out.length; i++) for (const p in parent) if (parent[p] === out[i]) out.push(+p);
  return out;
}
(async () => {
  let natter = null, rss = null, toPage = null; const pending = [];
  // natter starts before the browser, so its process start (page-ins of a large binary on a
  // busy machine) is not counted in the setup, as Chromium's own is not.
  if (a.mode === 'natter') natter = spawn('bash', ['-c', 'exec ' + a.natter], { stdio: ['pipe', 'pipe', 'ignore'] });
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-sync',
           '--disable-features=WebRtcHideLocalIpsWithMdns', '--use-fake-ui-for-media-stream'] });
  // Chromium is the only child of this script besides natter.
  const cpuNow = () => {
    const c = { chromium: 0, natter: 0 };
    const skip = new Set([process.pid, natter && natter.pid]);
    c.chromium = tree(process.pid).filter(p => !skip.has(p)).reduce((s, p) => s + cpuOf(p), 0);
    if (natter) c.natter = cpuOf(natter.pid);
    return c;
  };
  const T0 = Date.now(); const dbg = m => process.env.DRIVE_DEBUG && console.error(`${Date.now() - T0} ms ${m}`);
  let mark = null;
  const srv = http.createServer((q, s) => {
    if (q.url === '/events') {
      s.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });
      toPage = l => s.write('data: ' + l + '\n\n'); pending.splice(0).forEach(toPage); return;
    }
    if (q.url === '/signal') {
      let b = ''; q.on('data', d => b += d); q.on('end', () => { dbg('to natter ' + b.slice(0, 40)); if (natter) natter.stdin.write(b + '\n'); s.end(); }); return;
    }
    if (q.url === '/mark') { mark = cpuNow(); s.end(); return; }
    s.writeHead(200, { 'Content-Type': 'text/html' }); s.end(html);
  });
  await new Promise(r => srv.listen(0, '127.0.0.1', r));
  const page = await (await browser.newContext()).newPage();
  if (a.mode === 'natter') {
    let buf = '';
    natter.stdout.on('data', d => { buf += d; let i; while ((i = buf.indexOf('\n')) >= 0) { const l = buf.slice(0, i); buf = buf.slice(i + 1);
      let m; try { m = JSON.parse(l); } catch (e) { continue; }
      dbg('from natter ' + l.slice(0, 40));
      if (!m.event) { if (toPage) toPage(l); else pending.push(l); } } });
  }
  const q = new URLSearchParams({ mode: a.mode, mb: a.mb || '16', size: a.size || '65536', win: a.win || '8' });
  await page.goto(`http://127.0.0.1:${srv.address().port}/?${q}`);
  let r = null; const end = Date.now() + 120000;
  while (!r && Date.now() < end) { await new Promise(x => setTimeout(x, 100)); r = await page.evaluate(() => window.__r); }
  const fin = cpuNow();
  if (natter) { try { rss = +fs.readFileSync(`/proc/${natter.pid}/status`, 'utf8').match(/VmHWM:\s+(\d+)/)[1]; } catch (e) {} natter.kill('SIGTERM'); }
  const extra = { natter_peak_rss_kb: rss };
  if (r && mark && r.msgs) {
    const mb = r.msgs * r.size / 1048576;
    extra.cpu_s_chromium = +(fin.chromium - mark.chromium).toFixed(2);
    extra.cpu_s_natter = +(fin.natter - mark.natter).toFixed(2);
    extra.cpu_s_per_mb = +((extra.cpu_s_chromium + extra.cpu_s_natter) / mb).toFixed(4);
  }
  console.log('RESULT ' + JSON.stringify(Object.assign(r || { error: 'timeout' }, extra)));
  await browser.close(); srv.close();
})().catch(e => { console.log('RESULT ' + JSON.stringify({ error: String(e) })); process.exit(2); });
