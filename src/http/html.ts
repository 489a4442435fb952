/** Server-rendered pages: one layout, escaping by default. */
export function escapeHtml(value: unknown): string {
  return String(value ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);
}

/** Tagged template whose interpolations are escaped unless wrapped in `raw()`. */
export class Raw {
  readonly html: string;
  constructor(html: string) {
    this.html = html;
  }
}
export const raw = (html: string) => new Raw(html);

export function html(strings: TemplateStringsArray, ...values: unknown[]): Raw {
  let out = strings[0] ?? '';
  values.forEach((value, i) => {
    const rendered = Array.isArray(value) ? value.map((v) => (v instanceof Raw ? v.html : escapeHtml(v))).join('') : value instanceof Raw ? value.html : escapeHtml(value);
    out += rendered + (strings[i + 1] ?? '');
  });
  return new Raw(out);
}

const STYLE = `
:root{color-scheme:light;--ink:#1b1b35;--muted:#555770;--brand:#000091;--ok:#18753c;--err:#b3261e;--bg:#f6f6fb;--card:#fff;font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
*{box-sizing:border-box}body{margin:0;background:var(--bg);color:var(--ink);line-height:1.5}
header{background:var(--card);border-bottom:1px solid #ddd;padding:.75rem 1.25rem;font-weight:700}header span{color:var(--brand)}
main{max-width:30rem;margin:1.5rem auto;padding:1.5rem;background:var(--card);border-radius:.75rem;box-shadow:0 1px 3px #0002}
h1{font-size:1.4rem;margin-top:0}label{display:block;font-weight:600;margin:.5rem 0 .25rem}
input[type=text]{width:100%;font-size:1.2rem;padding:.6rem;border:2px solid #888;border-radius:.4rem;letter-spacing:.05em}
input:focus,button:focus,a:focus{outline:3px solid #0a76f6;outline-offset:2px}
button,.button{display:inline-block;font-size:1rem;padding:.7rem 1.2rem;border-radius:.4rem;border:0;background:var(--brand);color:#fff;cursor:pointer;text-decoration:none;margin-top:1rem}
.secondary{background:#e3e3fd;color:var(--brand)}
button.link{background:none;color:var(--brand);text-decoration:underline;padding:0;font-size:1rem}
.hint{color:var(--muted);font-size:.95rem}.error{color:var(--err);font-weight:600}.ok{color:var(--ok);font-weight:600}
.code{font-size:3rem;font-weight:800;letter-spacing:.3em;text-align:center;margin:.5rem 0;font-variant-numeric:tabular-nums}
.service{background:#eef;border-radius:.4rem;padding:.5rem .75rem}
[role=status]{min-height:1.5em}
`;

export function page(title: string, body: Raw, options: { head?: Raw } = {}): string {
  return `<!doctype html>
<html lang="fr"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${escapeHtml(title)} — Vigie</title><style>${STYLE}</style>${options.head?.html ?? ''}</head>
<body><header><span>Vigie</span> · Connexion des professionnels de santé</header><main>${body.html}</main></body></html>`;
}
