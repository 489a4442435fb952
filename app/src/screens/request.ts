import { ApiError, isReportable, serverNow, signedCall, type ChallengeOutcome, type ChallengeView } from '../api.ts';
import type { StoredDevice } from '../keystore.ts';
import { describe, endedRequest } from '../messages.ts';
import { alertBox, codeInput, digitsOf, formatTime, h, pinPad, render, whenLeaving } from '../ui.ts';

export type RequestOutcome =
  | { kind: 'approved' }
  | { kind: 'refused' }
  | { kind: 'not_me' }
  /** `reportable`: the request ended unanswered (withdrawn, expired); it may be reported as "not me". */
  | { kind: 'ended'; message: string; reportable?: string; context?: HTMLElement }
  | { kind: 'device_gone'; code: string };

/**
 * One login request: who asks (service, place, browser, time), how long it stays valid, the
 * number to match (or the code to type), the PIN, and two equal choices. Nothing is selected or
 * focused in advance; Enter submits nothing; "Accepter" stays disabled until a number and four
 * digits are entered, so a reflex tap cannot approve.
 */
export function requestScreen(device: StoredDevice, challenge: ChallengeView, done: (outcome: RequestOutcome) => void): { settle(state: string, reason: string | null): void; recheck(): Promise<void> } {
  let finished = false;
  // While our own answer is on its way, the stream's "settled" echo of it must not win the race.
  let answering = false;
  const finish = (outcome: RequestOutcome) => {
    if (finished) return;
    finished = true;
    done(outcome);
  };
  let picked = '';
  const message = h('div', { class: 'messages' });
  const accept = h('button', { type: 'button', class: 'btn choice', disabled: true }, 'Accepter');
  const refuse = h('button', { type: 'button', class: 'btn choice' }, 'Refuser');
  const pad = pinPad({ label: 'Votre code PIN', onChange: () => update() });

  let codeField: HTMLElement;
  let typed: HTMLInputElement | undefined;
  if (challenge.mode === 'typed') {
    const field = codeInput({ id: 'typed-code', label: 'Code affiché sur l’écran de connexion', hint: '6 chiffres' });
    typed = field.input;
    typed.addEventListener('input', () => update());
    codeField = field.element;
  } else {
    const options = challenge.candidates.map((code) => {
      const id = `code-${code}`;
      const input = h('input', { type: 'radio', name: 'code', id, value: code, onchange: () => {
        picked = code;
        update();
      } });
      return h('div', { class: 'candidate' }, input, h('label', { for: id }, code));
    });
    codeField = h('fieldset', { class: 'candidates' },
      h('legend', {}, 'Quel nombre est affiché sur l’écran de connexion ?'),
      h('div', { class: 'candidate-row', role: 'radiogroup' }, ...options),
      h('p', { class: 'hint' }, 'Vous ne voyez aucun de ces nombres, ou aucun écran de connexion ? Ne validez pas.'),
    );
  }
  const code = () => (typed ? digitsOf(typed.value) : picked);
  function update() {
    const ready = (challenge.mode === 'typed' ? /^\d{6}$/.test(code()) : code() !== '') && pad.value().length === 4;
    accept.disabled = !ready || finished;
  }

  const busy = (on: boolean) => {
    accept.disabled = on || !(code() && pad.value().length === 4);
    refuse.disabled = on;
    notMe.disabled = on;
  };

  /** The request as the server has it now; undefined when unreachable. */
  const fetchOutcome = () => signedCall<ChallengeOutcome>(device.privateKey, device.deviceId, 'GET', `/device/v1/challenges/${encodeURIComponent(challenge.id)}/outcome`).catch(() => undefined);

  /** Ends the screen on a request that ended elsewhere (another device, its browser, its expiry). */
  const endedElsewhere = (state: string, reason: string | null, reportable = isReportable(state, reason)) => {
    const text = state === 'approved' ? 'Cette demande a déjà été validée.' : state === 'expired' ? 'Cette demande a expiré.' : reason === 'superseded' ? endedRequest(state, reason) : 'Cette demande n’est plus en attente : elle a été traitée ou annulée.';
    finish({ kind: 'ended', message: text, ...(reportable ? { reportable: challenge.id } : {}) });
  };

  const answer = async (path: 'approve' | 'deny', body: unknown): Promise<boolean> => {
    busy(true);
    answering = true;
    try {
      await signedCall(device.privateKey, device.deviceId, 'POST', `/device/v1/challenges/${encodeURIComponent(challenge.id)}/${path}`, body);
      return true;
    } catch (error) {
      answering = false;
      busy(false);
      if (!(error instanceof ApiError)) {
        message.replaceChildren(alertBox(describe(error)));
        return false;
      }
      // The answer may have landed with its reply lost (a network change), or a retry finds it
      // answered: what the server has says how it ended, not "failed" nor "already handled".
      if (error.code === 'NETWORK' || error.code === 'CHALLENGE_NOT_PENDING') {
        const now = await fetchOutcome();
        if (now && now.state !== 'pending') {
          const ours = path === 'approve' ? now.state === 'approved' : now.state === 'denied' && now.reason === (body as { reason?: string }).reason;
          if (ours) finish(now.state === 'approved' ? { kind: 'approved' } : now.reason === 'not_me' ? { kind: 'not_me' } : { kind: 'refused' });
          else endedElsewhere(now.state, now.reason, now.reportable);
          return false;
        }
      }
      if (['DEVICE_LOCKED', 'DEVICE_REVOKED', 'DEVICE_UNKNOWN'].includes(error.code)) finish({ kind: 'device_gone', code: error.code });
      else if (['CHALLENGE_EXPIRED', 'CHALLENGE_NOT_PENDING'].includes(error.code)) finish({ kind: 'ended', message: describe(error), reportable: challenge.id });
      else if (['CHALLENGE_WRONG_CODE', 'CHALLENGE_NOT_FOUND'].includes(error.code)) finish({ kind: 'ended', message: describe(error) });
      else {
        if (error.code === 'PIN_WRONG') pad.clear();
        message.replaceChildren(alertBox(describe(error)));
        update();
      }
      return false;
    }
  };

  accept.addEventListener('click', async () => {
    if (accept.disabled) return;
    if (await answer('approve', { code: code(), pin: pad.value() })) finish({ kind: 'approved' });
  });
  refuse.addEventListener('click', async () => {
    if (await answer('deny', { reason: 'refused' })) finish({ kind: 'refused' });
  });
  const notMe = h('button', { type: 'button', class: 'btn link warn' }, 'Vous n’êtes pas à l’origine de la demande ?');
  notMe.addEventListener('click', async () => {
    if (await answer('deny', { reason: 'not_me' })) finish({ kind: 'not_me' });
  });

  const countdown = h('p', { class: 'countdown', role: 'timer', 'aria-live': 'off' });
  const bar = h('div', { class: 'bar-track', 'aria-hidden': 'true' }, h('div', { class: 'bar-fill' }));
  const total = Math.max(1, challenge.expiresAt - challenge.createdAt);
  const tick = () => {
    const left = Math.max(0, challenge.expiresAt - serverNow());
    countdown.textContent = left > 0 ? `Expire dans ${Math.ceil(left / 1000)} s` : 'Demande expirée';
    (bar.firstElementChild as HTMLElement).style.width = `${(100 * left) / total}%`;
    if (left <= 0) finish({ kind: 'ended', message: describe(new ApiError('CHALLENGE_EXPIRED', 410, '')), reportable: challenge.id });
  };
  tick();
  const interval = setInterval(tick, 500);
  whenLeaving(() => clearInterval(interval));

  const context = requestContext(challenge);

  render(
    h('h1', {}, 'Demande de connexion'),
    h('p', {}, 'Quelqu’un demande à se connecter en votre nom. Ne validez que si c’est vous, maintenant, sur cet écran de connexion.'),
    context,
    countdown,
    bar,
    codeField,
    pad.element,
    message,
    h('div', { class: 'choices' }, refuse, accept),
    notMe,
  );

  return {
    settle(state: string, reason: string | null) {
      if (finished || answering) return;
      endedElsewhere(state, reason);
    },
    /** No longer listed as pending (its end came while the app was not listening): asks how it ended. */
    async recheck() {
      if (finished || answering) return;
      const now = await fetchOutcome();
      if (now && now.state !== 'pending' && !finished && !answering) endedElsewhere(now.state, now.reason, now.reportable);
    },
  };
}

/** Who asked, from where, with which browser, when: the same lines wherever a request is shown. */
export function requestContext(challenge: Pick<ChallengeView, 'service' | 'context' | 'createdAt'>): HTMLElement {
  return h('dl', { class: 'context' },
    h('dt', {}, 'Service'), h('dd', { class: 'service-name' }, challenge.service.name),
    h('dt', {}, 'Lieu'), h('dd', {}, challenge.context.place ?? 'Non déterminé'),
    h('dt', {}, 'Navigateur'), h('dd', {}, challenge.context.browser),
    h('dt', {}, 'Heure'), h('dd', {}, formatTime(challenge.createdAt)),
  );
}
