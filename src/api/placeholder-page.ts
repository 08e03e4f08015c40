/** The page at `/` without the token cookie, or when the UI is not built. Static text, no scripts. */
export function placeholderPage(signedIn: boolean): string {
  const body = signedIn
    ? '<p>The browser interface is not built here (run <code>npm run build</code>). Meanwhile: <a href="/api/status">agent status (JSON)</a>, <a href="/api/devices">devices</a>, <a href="/api/history">history</a>.</p>'
    : '<p>Open the address <code>mooring agent</code> printed (it carries the access token).</p>';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Mooring agent</title></head>
<body><h1>Mooring agent</h1>${body}</body></html>
`;
}
