/** The page at `/` for a signed-in browser when the UI is not built. Static text, no scripts. */
export function placeholderPage(): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Mooring agent</title></head>
<body><h1>Mooring agent</h1><p>The browser interface is not built here (run <code>npm run build</code>). Meanwhile: <a href="/api/status">agent status (JSON)</a>, <a href="/api/devices">devices</a>, <a href="/api/history">history</a>.</p></body></html>
`;
}
