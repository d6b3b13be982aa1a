#!/usr/bin/env node
// Bundles npm 'stanza' for the browser as window.XMPP (it needs Node's 'events').
//   NODE_PATH=<dir>/node_modules node build.js OUT.js
require('esbuild').buildSync({
  stdin: { contents: "window.XMPP = require('stanza');", resolveDir: process.cwd() },
  nodePaths: (process.env.NODE_PATH || '').split(':').filter(Boolean),
  bundle: true, platform: 'browser', format: 'iife', minify: true, outfile: process.argv[2], logLevel: 'warning',
});
