import { html, page, raw, type Raw } from '../http/html.ts';
import type { Device } from '../device/store.ts';
import { deliveryLabel, encodeCursor, labelOf, type Attempt, type Cursor } from './history.ts';
import { MAX_ATTEMPTS } from './backchannel.ts';
import type { ContactChange } from './contacts.ts';
import type { SessionView } from './sessions.ts';
import type { LogoutDelivery } from './store.ts';
import { formatDateTime, formatLongDateTime, formatMobile, maskContact } from './format.ts';

/** The wallet's pages: server-rendered French HTML, readable on a phone, usable without JavaScript. */

export type NavKey = 'sessions' | 'history' | 'devices' | 'contacts' | 'report';

export interface Who {
  name: string;
  nationalId: string;
  csrf: string;
}

export interface Flash {
  kind: 'ok' | 'error';
  text: string;
}

export interface NotificationSettingsView {
  pushEnabled: boolean;
  quietUntil: number | null;
}

const STYLE = `
main{max-width:62rem}
.wallet-nav ul{list-style:none;display:flex;flex-wrap:wrap;gap:.4rem;padding:0;margin:0 0 1rem}
.wallet-nav a{display:block;padding:.45rem .8rem;border-radius:.4rem;text-decoration:none;color:var(--brand);background:#eeeefb;font-weight:600}
.wallet-nav a[aria-current=page]{background:var(--brand);color:#fff}
.wallet-nav a.report{background:#fde8e6;color:var(--err)}
.who{display:flex;flex-wrap:wrap;justify-content:space-between;align-items:center;gap:.5rem;color:var(--muted);margin-bottom:.5rem}
.who form{margin:0}.who button{margin:0}
.cards{list-style:none;padding:0;margin:0;display:grid;gap:1rem}
.card{border:1px solid #ccd;border-radius:.6rem;padding:1rem}
.card.current{border:2px solid var(--brand)}
.card h2,.card h3{font-size:1.1rem;margin:0 0 .25rem}
.badge{display:inline-block;font-size:.8rem;font-weight:600;padding:.1rem .55rem;border-radius:1rem;background:#e3e3fd;color:var(--brand);vertical-align:middle}
.badge.warn{background:#fde8e6;color:var(--err)}.badge.ok{background:#e6f4ea;color:var(--ok)}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem;margin:.5rem 0}
dl.facts dt{font-weight:600}dl.facts dd{margin:0}
dl.facts ul{margin:0;padding-left:1.1rem}
button.danger,.button.danger{background:var(--err)}
button.link{background:none;color:var(--brand);text-decoration:underline;padding:0;margin:0;font-size:.95rem}
table{width:100%;border-collapse:collapse;font-size:.95rem}
caption{text-align:left;font-weight:600;padding:.25rem 0}
th,td{text-align:left;padding:.5rem;border-bottom:1px solid #ddd;vertical-align:top}
tr.suspect td{background:#fff4f3}tr.suspect td:first-child{box-shadow:inset 4px 0 0 var(--err)}
.visually-hidden{position:absolute!important;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
.flash{padding:.75rem 1rem;border-radius:.4rem;background:#e6f4ea;color:#0c4a22;font-weight:600}
.flash.error{background:#fde8e6;color:#7a1a14}
.actions{display:flex;flex-wrap:wrap;gap:.75rem;align-items:center}
.actions form{margin:0}
input[type=email],input[type=tel],input[type=text].wide,textarea,select{width:100%;font-size:1rem;padding:.55rem;border:2px solid #888;border-radius:.4rem;font-family:inherit}
fieldset{border:1px solid #ccd;border-radius:.6rem;margin:1rem 0;padding:1rem}
legend{font-weight:700;padding:0 .25rem}
.pager{display:flex;gap:1rem;flex-wrap:wrap;margin-top:1rem}
@media (max-width:40rem){
  main{margin:0;border-radius:0;padding:1rem}
  table.responsive thead{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0)}
  table.responsive tr{display:block;border:1px solid #ddd;border-radius:.5rem;margin-bottom:.75rem}
  table.responsive td{display:grid;grid-template-columns:7.5rem 1fr;gap:.5rem;border:0;padding:.3rem .6rem}
  table.responsive td::before{content:attr(data-label);font-weight:600}
  table.responsive td.empty{display:none}
  dl.facts{grid-template-columns:1fr}dl.facts dd{margin-bottom:.35rem}
}
`;

const NAV: Array<{ key: NavKey; href: string; text: string }> = [
  { key: 'sessions', href: '/wallet', text: 'Connexions' },
  { key: 'history', href: '/wallet/history', text: 'Historique' },
  { key: 'devices', href: '/wallet/devices', text: 'Appareils' },
  { key: 'contacts', href: '/wallet/contacts', text: 'Coordonnées' },
  { key: 'report', href: '/wallet/report', text: 'Signaler une activité suspecte' },
];

function csrfField(csrf: string): Raw {
  return html`<input type="hidden" name="csrf" value="${csrf}">`;
}

function flashBlock(flash: Flash | undefined): Raw {
  if (!flash) return html`<div role="status" aria-live="polite"></div>`;
  return flash.kind === 'error'
    ? html`<p class="flash error" role="alert">${flash.text}</p>`
    : html`<div role="status" aria-live="polite"><p class="flash">${flash.text}</p></div>`;
}

export function walletPage(input: { title: string; active: NavKey | null; who?: Who | undefined; flash?: Flash | undefined; body: Raw }): string {
  const nav = input.who
    ? html`<div class="who"><span>${input.who.name} · identifiant national ${input.who.nationalId}</span>
        <form method="post" action="/wallet/logout">${csrfField(input.who.csrf)}<button class="link" type="submit">Quitter le portefeuille</button></form></div>
        <nav class="wallet-nav" aria-label="Portefeuille"><ul>${NAV.map(
          (n) => html`<li><a href="${n.href}"${n.key === 'report' ? raw(' class="report"') : ''}${n.key === input.active ? raw(' aria-current="page"') : ''}>${n.text}</a></li>`,
        )}</ul></nav>`
    : html``;
  return page(input.title, html`${nav}${flashBlock(input.flash)}${input.body}`, {
    head: html`<style>${raw(STYLE)}</style><script src="/wallet/static/wallet.js" defer></script>`,
  });
}

// ------------------------------------------------------------------------------ sessions

function servicesList(services: SessionView['services']): Raw {
  if (services.length === 0) return html`<dd>Aucun service</dd>`;
  return html`<dd><ul>${services.map((s) => html`<li>${s.name}</li>`)}</ul></dd>`;
}

function where(place: string | null, ip: string | null): string {
  if (place && ip) return `${place} (adresse ${ip})`;
  return place ?? (ip ? `Lieu inconnu (adresse ${ip})` : 'Inconnu');
}

const DELIVERY_ERRORS: Record<string, string> = {
  unreachable: 'service injoignable',
  timeout: 'pas de réponse du service',
  not_registered: 'service plus enregistré',
  no_backchannel_uri: 'le service ne reçoit plus les déconnexions',
};

function deliveryError(code: string | null): string {
  if (!code) return '';
  const status = /^http_(\d{3})$/.exec(code)?.[1];
  return status ? `réponse HTTP ${status} du service` : (DELIVERY_ERRORS[code] ?? code);
}

/** The delivery's state in words, with whether it still moves (for the live update). */
export function deliveryText(d: LogoutDelivery): { text: string; tone: 'ok' | 'warn' | 'wait' } {
  if (d.state === 'delivered') return { text: 'Déconnexion reçue par le service', tone: 'ok' };
  if (d.state === 'failed') return { text: `Échec : ${deliveryError(d.lastError) || 'service injoignable'} après ${d.attempts} essai${d.attempts > 1 ? 's' : ''}. Contactez le support du service.`, tone: 'warn' };
  if (d.attempts === 0) return { text: 'Envoi en cours…', tone: 'wait' };
  const next = d.nextAttemptAt ? `, nouvel essai vers ${formatDateTime(d.nextAttemptAt)}` : '';
  return { text: `Pas encore reçue : ${deliveryError(d.lastError)} (essai ${d.attempts} sur ${MAX_ATTEMPTS})${next}`, tone: 'wait' };
}

export function deliveriesTable(deliveries: LogoutDelivery[], serviceName: (clientId: string) => string): Raw {
  if (deliveries.length === 0) return html`<p class="hint">Aucune déconnexion envoyée ces 7 derniers jours.</p>`;
  const pending = deliveries.some((d) => d.state === 'pending');
  return html`<table class="responsive" id="deliveries" ${pending ? raw('data-poll-url="/wallet/deliveries.json"') : ''}>
    <caption>Déconnexions envoyées aux services (7 derniers jours)</caption>
    <thead><tr><th scope="col">Service</th><th scope="col">Envoyée le</th><th scope="col">État</th></tr></thead>
    <tbody>${deliveries.map((d) => {
      const state = deliveryText(d);
      return html`<tr data-delivery="${d.id}"><td data-label="Service">${serviceName(d.clientId)}</td><td data-label="Envoyée le">${formatDateTime(d.createdAt)}</td>
        <td data-label="État"><span class="badge ${state.tone === 'ok' ? 'ok' : state.tone === 'warn' ? 'warn' : ''}" data-state="${d.state}" aria-live="polite">${state.text}</span></td></tr>`;
    })}</tbody></table>`;
}

export function sessionsPage(input: { who: Who; sessions: SessionView[]; currentUid: string; deliveries: LogoutDelivery[]; serviceName: (clientId: string) => string; flash?: Flash | undefined }): string {
  // The session in use first, then the others, most recently used first.
  const ordered = [...input.sessions].sort((a, b) => Number(b.uid === input.currentUid) - Number(a.uid === input.currentUid));
  const cards = ordered.map((s) => {
    const current = s.uid === input.currentUid;
    const label = `${s.browser ?? 'Navigateur inconnu'}, ouverte le ${formatDateTime(s.startedAt)}`;
    return html`<li class="card${current ? ' current' : ''}" data-session="${s.uid}">
      <h2>${s.browser ?? 'Navigateur inconnu'} ${current ? html`<span class="badge">Cette session (portefeuille)</span>` : ''}</h2>
      <dl class="facts">
        <dt>Ouverte le</dt><dd>${formatDateTime(s.startedAt)}</dd>
        <dt>Depuis</dt><dd>${where(s.place, s.ip)}</dd>
        <dt>Dernière utilisation</dt><dd>${formatDateTime(s.lastUsedAt)}${s.lastIp && s.lastIp !== s.ip ? ` (adresse ${s.lastIp})` : ''}</dd>
        <dt>Services</dt>${servicesList(s.services)}
      </dl>
      <form method="post" action="/wallet/sessions/${encodeURIComponent(s.uid)}/end" ${current ? raw('data-confirm="Déconnecter cette session ? Vous quitterez aussi le portefeuille."') : ''}>
        ${csrfField(input.who.csrf)}
        <button type="submit">Déconnecter<span class="visually-hidden"> la session ${label}</span></button>
      </form>
    </li>`;
  });
  return walletPage({
    title: 'Mes connexions',
    active: 'sessions',
    who: input.who,
    flash: input.flash,
    body: html`<h1>Mes connexions</h1>
      <p>Voici les sessions Vigie ouvertes en votre nom et les services auxquels chacune a donné accès.
        Une session que vous ne reconnaissez pas ? Déconnectez-la : elle est fermée, ses accès aux services sont révoqués
        et chaque service est prévenu. Puis <a href="/wallet/report">signalez-la</a>.</p>
      ${input.sessions.length ? html`<ul class="cards" aria-label="Sessions ouvertes">${cards}</ul>` : html`<p>Aucune session ouverte.</p>`}
      <form method="post" action="/wallet/sessions/end-all" data-confirm="Fermer toutes vos sessions Vigie, y compris celle-ci ? Tous les services seront prévenus.">
        ${csrfField(input.who.csrf)}
        <button type="submit" class="danger">Me déconnecter partout</button>
      </form>
      <h2>Déconnexions envoyées</h2>
      ${deliveriesTable(input.deliveries, input.serviceName)}`,
  });
}

/** After the professional ended their own session (or all of them): they are out of the wallet too. */
export function endedPage(input: { title: string; text: string; deliveries: LogoutDelivery[]; serviceName: (clientId: string) => string }): string {
  return walletPage({
    title: input.title,
    active: null,
    body: html`<h1>${input.title}</h1>
      <div role="status"><p class="flash">${input.text}</p></div>
      ${deliveriesTable(input.deliveries, input.serviceName)}
      <p><a class="button" href="/wallet">Revenir au portefeuille</a></p>`,
  });
}

// ------------------------------------------------------------------------------ history

export function historyPage(input: { who: Who; attempts: Attempt[]; next: Cursor | undefined; first: boolean }): string {
  const rows = input.attempts.map((a) => {
    const outcome = labelOf(a.outcome);
    return html`<tr class="${a.suspicious ? 'suspect' : ''}">
      <td data-label="Date">${formatDateTime(a.at)}</td>
      <td data-label="Service">${a.service}</td>
      <td data-label="Résultat"><span>${outcome.label}${a.suspicious ? html` <span class="badge warn">À vérifier</span>` : ''}${a.detail ? html`<br><span class="hint">${a.detail}</span>` : ''}</span></td>
      <td data-label="Lieu">${where(a.place, a.ip)}</td>
      <td data-label="Navigateur">${a.browser ?? 'Inconnu'}</td>
      <td data-label="Notification">${deliveryLabel(a.delivery)}</td>
      <td data-label="Action" class="${a.suspicious ? '' : 'empty'}">${a.suspicious ? html`<a href="/wallet/report?attempt=${encodeURIComponent(a.key)}">Signaler<span class="visually-hidden"> la tentative du ${formatDateTime(a.at)}</span></a>` : ''}</td>
    </tr>`;
  });
  return walletPage({
    title: 'Historique des connexions',
    active: 'history',
    who: input.who,
    body: html`<h1>Historique des connexions</h1>
      <p>Toutes les demandes de connexion faites avec votre identifiant, y compris celles refusées, expirées ou bloquées.
        Les lignes marquées <span class="badge warn">À vérifier</span> méritent votre attention : si vous n'en êtes pas à l'origine,
        quelqu'un a tenté de se connecter en votre nom.</p>
      <p><a href="/wallet/history.csv" download>Exporter l'historique (CSV)</a></p>
      ${input.attempts.length
        ? html`<table class="responsive"><caption>${input.first ? 'Tentatives les plus récentes' : 'Tentatives plus anciennes'}</caption>
            <thead><tr><th scope="col">Date</th><th scope="col">Service</th><th scope="col">Résultat</th><th scope="col">Lieu</th><th scope="col">Navigateur</th><th scope="col">Notification</th><th scope="col"><span class="visually-hidden">Action</span></th></tr></thead>
            <tbody>${rows}</tbody></table>`
        : html`<p>Aucune tentative de connexion${input.first ? '' : ' plus ancienne'}.</p>`}
      <nav class="pager" aria-label="Pages de l'historique">
        ${input.first ? '' : html`<a href="/wallet/history">Tentatives les plus récentes</a>`}
        ${input.next ? html`<a href="/wallet/history?after=${encodeURIComponent(encodeCursor(input.next))}" rel="next">Tentatives plus anciennes</a>` : ''}
      </nav>`,
  });
}

// ------------------------------------------------------------------------------ devices

const DEVICE_STATES: Record<string, { text: string; tone: string }> = {
  active: { text: 'Active', tone: 'ok' },
  locked: { text: 'Verrouillée (codes PIN erronés)', tone: 'warn' },
  revoked: { text: 'Révoquée', tone: '' },
};

function quietText(settings: NotificationSettingsView, now: number): string {
  if (!settings.pushEnabled) return 'Notifications désactivées : ouvrez l’application e-CPS pour voir vos demandes.';
  if (settings.quietUntil && settings.quietUntil > now) return `Pas de notification jusqu’au ${formatLongDateTime(settings.quietUntil)}.`;
  return 'Notifications activées.';
}

export function devicesPage(input: { who: Who; devices: Device[]; settings: NotificationSettingsView | undefined; browsersForgottenAt?: number | null | undefined; now: number; flash?: Flash | undefined }): string {
  const cards = input.devices.map((d) => {
    const state = DEVICE_STATES[d.state] ?? { text: d.state, tone: '' };
    return html`<li class="card" data-device="${d.id}">
      <h2>${d.name} <span class="badge ${state.tone}">${state.text}</span></h2>
      <dl class="facts">
        <dt>Activée le</dt><dd>${formatDateTime(d.createdAt)}</dd>
        <dt>Dernière utilisation</dt><dd>${d.lastUsedAt ? formatDateTime(d.lastUsedAt) : 'Jamais'}</dd>
        ${d.revokedAt ? html`<dt>Révoquée le</dt><dd>${formatDateTime(d.revokedAt)}</dd>` : ''}
      </dl>
      ${d.state !== 'revoked'
        ? html`<form method="post" action="/wallet/devices/${encodeURIComponent(d.id)}/revoke" data-confirm="Révoquer cette e-CPS ? Elle ne pourra plus valider de connexion.">
            ${csrfField(input.who.csrf)}<button type="submit" class="danger">Révoquer<span class="visually-hidden"> l'appareil ${d.name}</span></button></form>`
        : ''}
    </li>`;
  });
  const settings = input.settings
    ? html`<h2 id="notifications">Notifications</h2>
      <p>${quietText(input.settings, input.now)} Ces réglages sont partagés avec l’application e-CPS.</p>
      <form method="post" action="/wallet/notifications">
        ${csrfField(input.who.csrf)}
        <fieldset><legend>Recevoir les notifications de connexion</legend>
          <p><label><input type="radio" name="push" value="on" ${input.settings.pushEnabled ? raw('checked') : ''}> Oui</label>
          <label><input type="radio" name="push" value="off" ${input.settings.pushEnabled ? '' : raw('checked')}> Non : je consulterai les demandes en ouvrant l’application</label></p>
          <label for="quiet">Période sans notification</label>
          <select id="quiet" name="quiet">
            <option value="keep">Ne rien changer</option>
            <option value="none">Aucune</option>
            <option value="1h">Pendant 1 heure</option>
            <option value="8h">Pendant 8 heures</option>
            <option value="24h">Pendant 24 heures</option>
            <option value="7d">Pendant 7 jours</option>
          </select>
        </fieldset>
        <button type="submit">Enregistrer</button>
      </form>`
    : html``;
  // undefined: no defences wired (the section would offer nothing).
  const browsers =
    input.browsersForgottenAt !== undefined
      ? html`<h2 id="trusted-browsers">Navigateurs de confiance</h2>
      <p>Un navigateur qui a terminé une connexion validée devient « de confiance » pour votre compte : il reçoit la validation par choix du code et reste servi normalement si quelqu’un tente de vous inonder de demandes depuis ailleurs.
        Si vous avez utilisé un poste partagé ou perdu un ordinateur, retirez cette confiance à tous vos navigateurs d’un coup : chacun la retrouvera en terminant une nouvelle connexion validée.
        Pour fermer aussi les sessions encore ouvertes, utilisez « Me déconnecter partout » sur la page <a href="/wallet">Connexions</a>.</p>
      ${input.browsersForgottenAt ? html`<p>Dernier retrait de confiance : ${formatDateTime(input.browsersForgottenAt)}.</p>` : ''}
      <form method="post" action="/wallet/trusted-browsers/forget" data-confirm="Retirer la confiance à tous vos navigateurs, y compris celui-ci ?">
        ${csrfField(input.who.csrf)}<button type="submit" class="danger">Ne plus faire confiance à aucun navigateur</button>
      </form>`
      : html``;
  return walletPage({
    title: 'Mes appareils',
    active: 'devices',
    who: input.who,
    flash: input.flash,
    body: html`<h1>Mes appareils e-CPS</h1>
      <p>Les applications e-CPS activées sur votre compte. Révoquez celles que vous n'utilisez plus ou que vous ne reconnaissez pas.</p>
      ${input.devices.length ? html`<ul class="cards" aria-label="Appareils">${cards}</ul>` : html`<p>Aucune e-CPS activée.</p>`}
      ${settings}
      ${browsers}`,
  });
}

// ------------------------------------------------------------------------------ contacts

const CHANGE_STATES: Record<string, string> = {
  pending_code: 'En attente du code de confirmation',
  cooling_off: 'Confirmé : utilisable après le délai de sécurité',
  applied: 'Appliqué',
  cancelled: 'Annulé',
  expired: 'Expiré (code non saisi à temps)',
  failed: 'Échoué',
  superseded: 'Remplacé par une demande plus récente',
};

const KIND_LABEL = { email: 'Adresse e-mail', mobile: 'Mobile' } as const;

function showContact(kind: 'email' | 'mobile', value: string | null): string {
  if (!value) return 'Non renseigné';
  return kind === 'mobile' ? formatMobile(value) : value;
}

export function contactsPage(input: {
  who: Who;
  contacts: { email: string | null; mobile: string | null };
  changes: ContactChange[];
  fresh: boolean;
  freshUntil: number;
  stepUpMinutes: number;
  coolingOffHours: number;
  now: number;
  flash?: Flash | undefined;
  /** Values typed in the form, re-shown after an error. */
  typed?: { kind: 'email' | 'mobile'; value: string } | undefined;
}): string {
  const open = input.changes.filter((c) => c.state === 'pending_code' || c.state === 'cooling_off');
  const past = input.changes.filter((c) => c.state !== 'pending_code' && c.state !== 'cooling_off').slice(0, 10);
  const openCards = open.map((c) => html`<li class="card" data-change="${c.id}">
      <h3>${KIND_LABEL[c.kind]} → ${c.kind === 'mobile' ? formatMobile(c.newValue) : c.newValue}</h3>
      <p><span class="badge">${CHANGE_STATES[c.state] ?? c.state}</span></p>
      ${c.state === 'pending_code'
        ? html`<p>Un code à 6 chiffres a été envoyé ${c.kind === 'email' ? 'à cette adresse' : 'par SMS à ce numéro'}.
            Il expire le ${formatDateTime(c.codeExpiresAt)}.</p>
          <form method="post" action="/wallet/contacts/${encodeURIComponent(c.id)}/confirm">
            ${csrfField(input.who.csrf)}
            <label for="code-${c.id}">Code reçu</label>
            <input id="code-${c.id}" name="code" type="text" class="wide" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9 ]*" maxlength="8" required>
            <button type="submit">Confirmer</button>
          </form>`
        : html`<p>${c.kind === 'email' ? 'Cette adresse' : 'Ce numéro'} pourra servir à activer une e-CPS à partir du
            <strong>${formatLongDateTime(c.usableAt ?? 0)}</strong>. Jusque-là, ${c.oldValue ? html`l'ancienne valeur (${maskContact(c.kind, c.oldValue)}) reste en vigueur` : 'aucune valeur n’est utilisable'}.</p>`}
      <form method="post" action="/wallet/contacts/${encodeURIComponent(c.id)}/cancel">
        ${csrfField(input.who.csrf)}<button type="submit" class="secondary">Annuler ce changement</button>
      </form>
    </li>`);
  const form = (kind: 'email' | 'mobile') => {
    const typed = input.typed?.kind === kind ? input.typed.value : '';
    return html`<form method="post" action="/wallet/contacts/change">
      ${csrfField(input.who.csrf)}<input type="hidden" name="kind" value="${kind}">
      <label for="new-${kind}">${kind === 'email' ? 'Nouvelle adresse e-mail' : 'Nouveau numéro de mobile'}</label>
      ${kind === 'email'
        ? html`<input id="new-${kind}" name="value" type="email" autocomplete="email" value="${typed}" required>`
        : html`<input id="new-${kind}" name="value" type="tel" autocomplete="tel" inputmode="tel" placeholder="06 12 34 56 78" value="${typed}" required>`}
      <button type="submit">Recevoir un code de confirmation</button>
    </form>`;
  };
  const changeForms = input.fresh
    ? html`<p class="hint">Votre validation e-CPS est récente : vous pouvez modifier vos coordonnées jusqu’à ${formatDateTime(input.freshUntil)}.</p>
        <fieldset><legend>Changer d'adresse e-mail</legend>${form('email')}</fieldset>
        <fieldset><legend>Changer de mobile</legend>${form('mobile')}</fieldset>`
    : html`<p>Pour modifier vos coordonnées, confirmez d'abord votre identité avec votre e-CPS
          (validation de moins de ${input.stepUpMinutes} minutes).</p>
        <p><a class="button" href="/wallet/login?return=${encodeURIComponent('/wallet/contacts')}">Confirmer avec mon e-CPS</a></p>`;
  return walletPage({
    title: 'Mes coordonnées',
    active: 'contacts',
    who: input.who,
    flash: input.flash,
    body: html`<h1>Mes coordonnées d'activation</h1>
      <p>Votre adresse e-mail et votre mobile permettent d'activer une e-CPS. Par sécurité, un changement demande une validation e-CPS récente,
        un code envoyé à la nouvelle coordonnée, et un message est envoyé à l'ancienne avec un lien d'annulation.
        La nouvelle coordonnée ne sert à l'activation qu'après un délai de ${input.coolingOffHours} heures.</p>
      <dl class="facts">
        <dt>Adresse e-mail</dt><dd>${showContact('email', input.contacts.email)}</dd>
        <dt>Mobile</dt><dd>${showContact('mobile', input.contacts.mobile)}</dd>
      </dl>
      ${open.length ? html`<h2>Changements en cours</h2><ul class="cards">${openCards}</ul>` : ''}
      <h2>Modifier</h2>
      ${changeForms}
      ${past.length
        ? html`<h2>Changements passés</h2><table class="responsive"><thead><tr><th scope="col">Demandé le</th><th scope="col">Coordonnée</th><th scope="col">État</th></tr></thead>
          <tbody>${past.map((c) => html`<tr><td data-label="Demandé le">${formatDateTime(c.createdAt)}</td><td data-label="Coordonnée">${KIND_LABEL[c.kind]} → ${maskContact(c.kind, c.newValue)}</td><td data-label="État">${CHANGE_STATES[c.state] ?? c.state}</td></tr>`)}</tbody></table>`
        : ''}`,
  });
}

export function cancelLinkPage(input: { change: ContactChange; action: string; now: number }): string {
  const c = input.change;
  const open = c.state === 'pending_code' || c.state === 'cooling_off';
  return walletPage({
    title: 'Annuler un changement de coordonnées',
    active: null,
    body: html`<h1>Annuler un changement de coordonnées</h1>
      <p>Le ${formatLongDateTime(c.createdAt)}, une demande a été faite pour remplacer votre ${c.kind === 'email' ? 'adresse e-mail' : 'numéro de mobile'}
        par <strong>${maskContact(c.kind, c.newValue)}</strong>.</p>
      ${open
        ? html`<p>Si vous n'en êtes pas à l'origine, annulez-la. Par précaution, toutes vos sessions Vigie seront fermées et les services prévenus.</p>
          <form method="post" action="${input.action}"><button type="submit" class="danger">Annuler ce changement</button></form>`
        : c.state === 'applied'
          ? html`<p class="error" role="alert">Ce changement est déjà effectif. S'il ne vient pas de vous, contactez le support Vigie sans attendre.</p>`
          : html`<p>Ce changement n'est plus en cours (${CHANGE_STATES[c.state] ?? c.state}) : il n'y a rien à annuler.</p>`}`,
  });
}

export function messagePage(input: { title: string; text: string; error?: boolean; link?: { href: string; text: string } }): string {
  return walletPage({
    title: input.title,
    active: null,
    body: html`<h1>${input.title}</h1>
      ${input.error ? html`<p class="error" role="alert">${input.text}</p>` : html`<div role="status"><p class="flash">${input.text}</p></div>`}
      ${input.link ? html`<p><a class="button" href="${input.link.href}">${input.link.text}</a></p>` : ''}`,
  });
}

// ------------------------------------------------------------------------------ report

export function reportPage(input: { who: Who; attempt: Attempt | undefined }): string {
  const a = input.attempt;
  return walletPage({
    title: 'Signaler une activité suspecte',
    active: 'report',
    who: input.who,
    body: html`<h1>Signaler une activité suspecte</h1>
      <p>Vous avez reçu une notification que vous n'attendiez pas, ou vous voyez une connexion que vous ne reconnaissez pas ?
        Signalez-la : <strong>toutes vos sessions Vigie seront fermées</strong>, les accès aux services révoqués, chaque service prévenu,
        et l'équipe d'exploitation de Vigie sera alertée.</p>
      ${a
        ? html`<dl class="facts"><dt>Tentative signalée</dt><dd>${formatDateTime(a.at)} — ${a.service} — ${labelOf(a.outcome).label}</dd>
            <dt>Depuis</dt><dd>${where(a.place, a.ip)}${a.browser ? `, ${a.browser}` : ''}</dd></dl>`
        : ''}
      <form method="post" action="/wallet/report">
        ${csrfField(input.who.csrf)}
        ${a ? html`<input type="hidden" name="attempt" value="${a.key}">` : ''}
        <label for="comment">Ce que vous avez constaté (facultatif)</label>
        <textarea id="comment" name="comment" rows="4" maxlength="1000"></textarea>
        <button type="submit" class="danger">Signaler et me déconnecter partout</button>
      </form>`,
  });
}
