// A company's website for the web chat test (tests/browser/chat.test.mjs): two static
// pages on another origin than Hotline, each embedding the chat widget the way a customer
// would paste it:
//
//   <script src="HOTLINE/chat/widget.js?site=KEY" async></script>
//
//   /             "Demo Shop - Home", with a link to the prices page
//   /prices.html  "Demo Shop - Prices"
//   /account.html a signed-in customer's page: it passes window.hotlineChat with the
//                 name, e-mail and customer id, the visitor key and the time, signed with
//                 the site's secret (`secret`), fresh on every request
//
// Used by the test through startHost(); can also run on its own to try the widget by hand:
//   BASE_URL=http://127.0.0.1:18080 node tests/browser/chat-host.mjs [port] [site]
import { createHash, createHmac } from 'node:crypto';
import { createServer } from 'node:http';
import { pathToFileURL } from 'node:url';

const escape = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** What a site's server puts in the page of a logged-in customer: HMAC-SHA256 in hex over
 * visitor_key, timestamp (Unix seconds, now), customer_id, e-mail and name, one per line.
 * The visitor key is the site's own name for this customer (here a hash of the customer
 * id); the widget chats under it. Hotline refuses a signature older than
 * chat.signature_max_age_secs or made for another visitor key. */
export function signedFields(secret, { name, email, customer_id }) {
  const visitor_key = createHash('sha256').update(`demo-shop:${customer_id}`).digest('hex').slice(0, 32);
  const timestamp = Math.floor(Date.now() / 1000);
  const signature = createHmac('sha256', secret)
    .update(`${visitor_key}\n${timestamp}\n${customer_id}\n${email}\n${name}`)
    .digest('hex');
  return { name, email, customer_id, visitor_key, timestamp, signature };
}

function page({ title, heading, body, hotline, site, fields = null }) {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escape(title)}</title>
<style>
  body { font: 16px/1.5 Georgia, serif; margin: 0; color: #222; }
  header { background: #222; color: #fff; padding: 12px 24px; }
  header a { color: #fff; margin-right: 16px; }
  main { padding: 24px; max-width: 40em; }
</style>
</head>
<body>
<header><nav aria-label="Site"><a href="/">Home</a><a href="/prices.html">See our prices</a></nav></header>
<main>
<h1>${escape(heading)}</h1>
${body}
</main>
${fields ? `<script>window.hotlineChat = ${JSON.stringify(fields).replace(/</g, '\\u003c')};</script>\n` : ''}<script src="${escape(hotline)}/chat/widget.js?site=${encodeURIComponent(site)}" async></script>
</body>
</html>
`;
}

/**
 * Starts the site on 127.0.0.1:`port`; resolves with { url, close() }.
 * `hotline`: Hotline's base address (where the widget script comes from); `site`: the chat
 * site's key in Hotline's config.
 */
export function startHost({ port, hotline, site = 'demo', secret = 'test-secret', customer = null }) {
  const pages = {
    '/': page({
      title: 'Demo Shop - Home',
      heading: 'Welcome to the Demo Shop',
      body: '<p>Shoes in every colour. Questions? Chat with us: the button is in the corner.</p>\n'
        + '<p><a href="/prices.html">See our prices</a></p>',
      hotline,
      site,
    }),
    '/prices.html': page({
      title: 'Demo Shop - Prices',
      heading: 'Prices',
      body: '<table><tr><th>Red shoes</th><td>49 EUR</td></tr><tr><th>Blue shoes</th><td>52 EUR</td></tr></table>',
      hotline,
      site,
    }),
  };
  // Signed when served, as a site's server does (the signature carries the time).
  const accountPage = () => page({
    title: 'Demo Shop - My account',
    heading: 'My account',
    body: '<p>You are logged in.</p>',
    hotline,
    site,
    fields: signedFields(secret, customer || {
      name: 'Kata Signed', email: 'kata@example.org', customer_id: 'C-1001',
    }),
  });
  const server = createServer((req, res) => {
    const path = new URL(req.url, 'http://host').pathname;
    const html = path === '/account.html' ? accountPage() : pages[path === '/index.html' ? '/' : path];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD' }).end();
    } else if (html) {
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : html);
    } else {
      res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' }).end('not found\n');
    }
  });
  return new Promise((resolve, reject) => {
    server.once('error', (e) => {
      reject(e.code === 'EADDRINUSE'
        ? new Error(`the test site's port 127.0.0.1:${port} is taken (set CHAT_HOST_PORT, and the chat site's allowed_origins to match)`)
        : e);
    });
    server.listen(port, '127.0.0.1', () => {
      resolve({
        url: `http://127.0.0.1:${server.address().port}`,
        close: () => new Promise((done) => {
          server.closeAllConnections?.();
          server.close(() => done());
        }),
      });
    });
  });
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const hotline = process.env.BASE_URL || 'http://127.0.0.1:18080';
  const port = Number(process.argv[2] || process.env.CHAT_HOST_PORT || 18091);
  const site = process.argv[3] || process.env.CHAT_SITE || 'demo';
  startHost({ port, hotline, site }).then(({ url }) => {
    console.log(`demo shop on ${url}, widget from ${hotline} (site ${site})`);
  }, (e) => {
    console.error(e.message);
    process.exit(1);
  });
}
