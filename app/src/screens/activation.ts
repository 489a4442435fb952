import { ACTIVATION_DEVICE_ID, exportPublicJwk, generateDeviceKey } from '../../../src/device/signature.ts';
import { isTrivialPin } from '../../../src/device/pin.ts';
import { normaliseIdentifier } from '../../../src/login/identifier.ts';
import { describeBrowser } from '../../../src/login/browser.ts';
import { ApiError, publicCall, serverNow, signedCall, type DeviceView } from '../api.ts';
import { clearPendingActivation, getPendingActivation, putPendingActivation, type PendingActivation, type StoredDevice } from '../keystore.ts';
import { describe } from '../messages.ts';
import { alertBox, codeInput, digitsOf, h, pinPad, remaining, render, whenLeaving } from '../ui.ts';

export interface ActivationContext {
  /** The device being renewed, if any (deleted once the new one is registered). */
  renewing: StoredDevice | null;
  finish(device: StoredDevice, renewed: boolean): Promise<void>;
  cancel(): void;
}

const RESTART_CODES = new Set(['ACTIVATION_NOT_FOUND', 'ACTIVATION_EXPIRED', 'ACTIVATION_ATTEMPTS_EXHAUSTED', 'ACTIVATION_ALREADY_USED', 'ACTIVATION_KEY_MISMATCH']);

/** Activation (or renewal): identifier → two codes (email, SMS) → PIN typed twice → registered. */
export async function startActivation(ctx: ActivationContext): Promise<void> {
  const pending = await getPendingActivation();
  if (pending && pending.expiresAt > serverNow() && (pending.renews ?? null) === (ctx.renewing?.deviceId ?? null)) {
    return pending.verified ? pinScreen(ctx, pending) : codesScreen(ctx, pending);
  }
  if (pending) await clearPendingActivation();
  identifierScreen(ctx);
}

function identifierScreen(ctx: ActivationContext, error?: string, value = ctx.renewing?.nationalId ?? ''): void {
  const input = h('input', { id: 'nid', name: 'nid', type: 'text', inputmode: 'numeric', autocomplete: 'username', value, 'aria-describedby': error ? 'nid-hint nid-error' : 'nid-hint', ...(error ? { 'aria-invalid': 'true' } : {}) });
  const submit = h('button', { type: 'submit', class: 'btn primary' }, 'Recevoir mes codes');
  const form = h('form', { novalidate: true, onsubmit: async (event: Event) => {
    event.preventDefault();
    const result = normaliseIdentifier(input.value);
    if (!result.ok) return identifierScreen(ctx, result.message, input.value);
    submit.disabled = true;
    try {
      const pair = await generateDeviceKey(false);
      const flow = await publicCall<{ flowId: string; expiresAt: number }>('POST', '/device/v1/activation', { nationalId: result.nationalId });
      const pending: PendingActivation = { flowId: flow.flowId, nationalId: result.nationalId, expiresAt: flow.expiresAt, verified: false, privateKey: pair.privateKey, publicJwk: await exportPublicJwk(pair.publicKey), renews: ctx.renewing?.deviceId ?? null };
      await putPendingActivation(pending);
      codesScreen(ctx, pending, true);
    } catch (e) {
      identifierScreen(ctx, describe(e), input.value);
    }
  } },
    h('label', { for: 'nid' }, 'Identifiant national'),
    h('p', { id: 'nid-hint', class: 'hint' }, '12 chiffres commençant par 8, ou votre numéro RPPS à 11 chiffres.'),
    input,
    error ? h('p', { id: 'nid-error', class: 'notice error', role: 'alert' }, error) : null,
    submit,
  );
  render(
    h('h1', {}, ctx.renewing ? 'Renouveler mon e-CPS' : 'Activer mon e-CPS'),
    h('p', {}, 'Vous allez recevoir deux codes de validation : l’un par e-mail, l’autre par SMS, aux coordonnées enregistrées pour vous dans l’annuaire des professionnels de santé.'),
    form,
    h('button', { type: 'button', class: 'btn link', onclick: () => ctx.cancel() }, 'Annuler'),
  );
}

function codesScreen(ctx: ActivationContext, pending: PendingActivation, justSent = false, error?: string): void {
  const email = codeInput({ id: 'email-code', label: 'Code reçu par e-mail', hint: '6 chiffres' });
  const sms = codeInput({ id: 'sms-code', label: 'Code reçu par SMS', hint: '6 chiffres', autocomplete: 'one-time-code' });
  const timer = h('p', { class: 'hint', role: 'timer' });
  const tick = () => {
    const left = (pending.expiresAt - serverNow()) / 1000;
    timer.textContent = left > 0 ? `Ces codes expirent dans ${remaining(left)}.` : 'Ces codes ont expiré.';
  };
  tick();
  const interval = setInterval(tick, 1000);
  whenLeaving(() => clearInterval(interval));
  const submit = h('button', { type: 'submit', class: 'btn primary' }, 'Valider les codes');
  const form = h('form', { novalidate: true, onsubmit: async (event: Event) => {
    event.preventDefault();
    const emailCode = digitsOf(email.input.value);
    const smsCode = digitsOf(sms.input.value);
    if (!/^\d{6}$/.test(emailCode) || !/^\d{6}$/.test(smsCode)) return codesScreen(ctx, pending, false, 'Chaque code compte exactement 6 chiffres.');
    submit.disabled = true;
    try {
      await signedCall(pending.privateKey, ACTIVATION_DEVICE_ID, 'POST', `/device/v1/activation/${encodeURIComponent(pending.flowId)}/verify`, { emailCode, smsCode, publicKey: pending.publicJwk });
      const verified = { ...pending, verified: true };
      await putPendingActivation(verified);
      pinScreen(ctx, verified);
    } catch (e) {
      if (e instanceof ApiError && RESTART_CODES.has(e.code)) {
        await clearPendingActivation();
        return identifierScreen(ctx, describe(e), pending.nationalId);
      }
      codesScreen(ctx, pending, false, describe(e));
    }
  } }, email.element, sms.element, timer, error ? alertBox(error) : null, submit);
  render(
    h('h1', {}, 'Saisissez vos deux codes'),
    justSent
      ? h('p', { class: 'notice info', role: 'status' }, 'Si cet identifiant correspond à un professionnel enregistré avec une adresse e-mail et un numéro de mobile, deux codes viennent de lui être envoyés : l’un par e-mail, l’autre par SMS.')
      : null,
    form,
    h('details', { class: 'help' },
      h('summary', {}, 'Vous ne recevez rien ?'),
      h('p', {}, 'Patientez quelques minutes et regardez dans vos courriers indésirables. Les codes partent vers l’adresse e-mail et le mobile enregistrés pour vous dans l’annuaire : s’ils ne sont plus à jour, faites-les corriger (par votre ordre professionnel ou le guichet de l’annuaire) puis recommencez. Vérifiez aussi l’identifiant saisi.'),
    ),
    h('button', { type: 'button', class: 'btn link', onclick: async () => {
      await clearPendingActivation();
      identifierScreen(ctx, undefined, pending.nationalId);
    } }, 'Recommencer avec de nouveaux codes'),
  );
  if (!justSent && !error) email.input.focus();
}

function pinScreen(ctx: ActivationContext, pending: PendingActivation, error?: string): void {
  let first = '';
  const title = h('h1', {}, 'Choisissez votre code PIN');
  const explain = h('p', {}, 'Ce code à 4 chiffres vous sera demandé pour valider chaque connexion. Évitez les suites évidentes (0000, 1234, 1111, votre année de naissance…).');
  const message = h('div', {}, error ? alertBox(error) : null);
  const next = h('button', { type: 'button', class: 'btn primary', disabled: true }, 'Continuer');
  const pad = pinPad({ label: 'Code PIN', onChange: (value) => (next.disabled = value.length !== 4) });
  const fail = (text: string) => {
    first = '';
    pad.clear();
    title.textContent = 'Choisissez votre code PIN';
    next.textContent = 'Continuer';
    message.replaceChildren(alertBox(text));
  };
  next.addEventListener('click', async () => {
    const value = pad.value();
    if (value.length !== 4) return;
    if (!first) {
      if (isTrivialPin(value)) return fail('Ce code PIN est trop facile à deviner. Choisissez-en un autre.');
      first = value;
      pad.clear();
      title.textContent = 'Confirmez votre code PIN';
      next.textContent = 'Activer mon e-CPS';
      message.replaceChildren(h('p', { class: 'hint', role: 'status' }, 'Saisissez le même code une seconde fois.'));
      return;
    }
    if (value !== first) return fail('Les deux codes PIN ne sont pas identiques. Recommencez.');
    next.disabled = true;
    try {
      const name = `e-CPS — ${describeBrowser(navigator.userAgent)}`.slice(0, 60);
      const device = await signedCall<DeviceView>(pending.privateKey, ACTIVATION_DEVICE_ID, 'POST', `/device/v1/activation/${encodeURIComponent(pending.flowId)}/complete`, { publicKey: pending.publicJwk, pin: value, name });
      await clearPendingActivation();
      await ctx.finish({ deviceId: device.id, nationalId: device.nationalId, name: device.name, privateKey: pending.privateKey, publicJwk: pending.publicJwk, activatedAt: device.createdAt }, pending.renews !== null);
    } catch (e) {
      if (e instanceof ApiError && RESTART_CODES.has(e.code)) {
        await clearPendingActivation();
        return identifierScreen(ctx, describe(e), pending.nationalId);
      }
      fail(describe(e));
    }
  });
  render(title, explain, message, pad.element, next);
}
