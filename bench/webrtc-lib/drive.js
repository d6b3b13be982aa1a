#!/usr/bin/env node
// node drive.js --mode chromium|natter [--natter '<cmd>'] [--mb 16] [--size 65536]: prints RESULT {json}.
const { chromium } = require('playwright-core'); const { spawn } = require('child_process');
const fs = require('fs'); const path = require('path'); const http = require('http');
const a = {}; const v = process.argv.slice(2); for (let i = 0; i < v.length; i += 2) a[v[i].slice(2)] = v[i + 1];
const html = fs.readFileSync(path.join(__dirname, 'page.html'));
(async () => {
  const srv = http.createServer((q, s) => { s.writeHead(200, { 'Content-Type': 'text/html' }); s.end(html); });
  await new Promise(r => srv.listen(0, '127.0.0.1', r));
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-sync',
           '--disable-features=WebRtcHideLocalIpsWithMdns', '--use-fake-ui-for-media-stream'] });
  const page = await (await browser.newContext()).newPage();
  let natter = null, rss = null;
  if (a.mode === 'natter') {
    natter = spawn('bash', ['-c', 'exec ' + a.natter], { stdio: ['pipe', 'pipe', 'ignore'] });
    let buf = '';
    natter.stdout.on('data', d => { buf += d; let i; while ((i = buf.indexOf('\n')) >= 0) { const l = buf.slice(0, i); buf = buf.slice(i + 1);
      let m; try { m = JSON.parse(l); } catch (e) { continue; }
      if (!m.event) page.evaluate(t => window.fromNatter(t), l).catch(() => {}); } });
    await page.exposeFunction('toNatter', t => natter.stdin.write(t + '\n'));
  }
  const q = new URLSearchParams({ mode: a.mode, mb: a.mb || '16', size: a.size || '65536' });
  await page.goto(`http://127.0.0.1:${srv.address().port}/?${q}`);
  let r = null; const end = Date.now() + 120000;
  while (!r && Date.now() < end) { await new Promise(x => setTimeout(x, 200)); r = await page.evaluate(() => window.__r); }
  if (natter) { try { rss = +fs.readFileSync(`/proc/${natter.pid}/status`, 'utf8').match(/VmHWM:\s+(\d+)/)[1]; } catch (e) {} natter.kill('SIGTERM'); }
  console.log('RESULT ' + JSON.stringify(Object.assign(r || { error: 'timeout' }, { natter_peak_rss_kb: rss })));
  await browser.close(); srv.close();
})().catch(e => { console.log('RESULT ' + JSON.stringify({ error: String(e) })); process.exit(2); });
