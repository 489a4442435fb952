import { html, page, type Raw } from '../http/html.ts';
import type { Challenge } from '../challenge/challenge.ts';

const NOT_ACTIVATED_HINT = html`<p class="hint">Pas de notification ? Ouvrez votre application e-CPS : les demandes en attente s'y affichent.
  Si vous n'avez pas encore activé votre e-CPS, activez-la d'abord depuis l'application.</p>`;

/** Back to the service without logging in (it is told access_denied); on the code's page, the phone's request is withdrawn too. */
function cancelForm(input: { abortAction: string; csrf: string; challengeId?: string }): Raw {
  return html`<form method="post" action="${input.abortAction}" data-leave>
        <input type="hidden" name="csrf" value="${input.csrf}">
        ${input.challengeId ? html`<input type="hidden" name="challenge" value="${input.challengeId}">` : ''}
        <button type="submit" class="secondary">Annuler et revenir au service</button>
      </form>`;
}

export function identifierPage(input: { clientName: string; action: string; abortAction: string; csrf: string; value?: string; error?: string }): string {
  const describedBy = input.error ? 'nid-help nid-error' : 'nid-help';
  return page(
    'Connexion',
    html`<h1>Connexion avec e-CPS</h1>
      <p class="service">Le service <strong>${input.clientName}</strong> demande à vous identifier.</p>
      <form method="post" action="${input.action}" novalidate>
        <input type="hidden" name="csrf" value="${input.csrf}">
        <label for="nid">Identifiant national</label>
        <p id="nid-help" class="hint">12 chiffres, commençant par 8 (ou votre numéro RPPS à 11 chiffres).</p>
        <input id="nid" name="nationalId" type="text" inputmode="numeric" autocomplete="username" value="${input.value ?? ''}"
          aria-describedby="${describedBy}" ${input.error ? html`aria-invalid="true"` : ''} required autofocus>
        ${input.error ? html`<p id="nid-error" class="error" role="alert">${input.error}</p>` : ''}
        <button type="submit">Recevoir une notification</button>
      </form>
      ${cancelForm(input)}`,
  );
}

export function challengePage(input: { challenge: Challenge; secondsLeft: number; statusUrl: string; eventsUrl: string; continueAction: string; resumeUrl: string; restartAction: string; abortAction: string; csrf: string }): string {
  const { challenge } = input;
  const instruction = challenge.mode === 'typed'
    ? html`<p>Saisissez ce code dans votre application e-CPS, puis votre code PIN.</p>`
    : html`<p>Dans votre application e-CPS, choisissez ce nombre parmi les trois proposés, puis saisissez votre code PIN.</p>`;
  return page(
    'Validez sur votre e-CPS',
    html`<h1>Validez la connexion sur votre e-CPS</h1>
      <p class="service">Service : <strong>${challenge.clientName}</strong></p>
      ${instruction}
      <p class="code" aria-label="${challenge.mode === 'typed' ? 'Code à saisir' : 'Code à choisir'} : ${challenge.displayCode.split('').join(' ')}">${challenge.displayCode}</p>
      <p id="countdown" class="hint" data-seconds-left="${input.secondsLeft}">La demande expire dans ${input.secondsLeft} secondes.</p>
      <p id="status" role="status" aria-live="polite">En attente de votre validation…</p>
      <form id="continue" method="post" action="${input.continueAction}">
        <input type="hidden" name="csrf" value="${input.csrf}">
        <noscript><button type="submit">J'ai validé sur mon e-CPS</button></noscript>
      </form>
      <form method="post" action="${input.restartAction}" data-leave>
        <input type="hidden" name="csrf" value="${input.csrf}">
        <input type="hidden" name="challenge" value="${challenge.id}">
        <button type="submit" class="link">Recommencer avec un autre identifiant</button>
      </form>
      ${cancelForm({ ...input, challengeId: challenge.id })}
      ${NOT_ACTIVATED_HINT}
      <div id="live" data-status-url="${input.statusUrl}" data-events-url="${input.eventsUrl}" data-resume-url="${input.resumeUrl}" hidden></div>`,
    { head: html`<script src="/static/login.js" defer></script>` },
  );
}

/** The page of an approved challenge not yet used (reloaded, or reached without JavaScript): one button to finish. */
export function approvedPage(input: { clientName: string; continueAction: string; csrf: string }): string {
  return page(
    'Connexion validée',
    html`<h1>Connexion validée</h1>
      <p class="ok" role="status">Vous avez validé la connexion à <strong>${input.clientName}</strong> sur votre e-CPS.</p>
      <form id="continue" method="post" action="${input.continueAction}">
        <input type="hidden" name="csrf" value="${input.csrf}">
        <button type="submit">Continuer vers le service</button>
      </form>`,
  );
}

const OUTCOMES: Record<string, { title: string; text: string }> = {
  denied: { title: 'Demande refusée', text: 'La demande a été refusée depuis l\u2019application e-CPS.' },
  expired: { title: 'Demande expirée', text: 'La demande a expiré sans validation. Vous pouvez recommencer.' },
  failed: { title: 'Demande annulée', text: 'La validation a échoué (code ou code PIN incorrect). La demande a été annulée.' },
  cancelled: { title: 'Demande annulée', text: 'La demande a été annulée.' },
  consumed: { title: 'Demande déjà utilisée', text: 'Cette validation a déjà servi. Recommencez la connexion depuis le service.' },
};

export function outcomeText(state: string): { title: string; text: string } {
  return OUTCOMES[state] ?? OUTCOMES.cancelled!;
}

export function outcomePage(state: string, retryUrl: string): string {
  const outcome = outcomeText(state);
  return page(outcome.title, html`<h1>${outcome.title}</h1><p class="error" role="alert">${outcome.text}</p><a class="button" href="${retryUrl}">Recommencer</a>${NOT_ACTIVATED_HINT}`);
}

export function messagePage(title: string, body: Raw): string {
  return page(title, html`<h1>${title}</h1>${body}`);
}
