import './style.css';
import { ApiError, signedCall, type ChallengeOutcome, type ChallengeView } from './api.ts';
import { clearDevice, clearPendingActivation, getDevice, putDevice, type StoredDevice } from './keystore.ts';
import { describe, endedRequest } from './messages.ts';
import { notificationPermission, pushSupported, registerServiceWorker, subscribe, unsubscribe } from './push.ts';
import { openStream } from './stream.ts';
import { startActivation } from './screens/activation.ts';
import { requestContext, requestScreen, type RequestOutcome } from './screens/request.ts';
import { alertBox, formatDate, h, render } from './ui.ts';

/**
 * The e-CPS app: activation, then a home screen that receives login requests live (stream while
 * open, Web Push when closed, a pull on every opening) and shows them one at a time.
 */
const state: {
  device: StoredDevice | null;
  queue: Map<string, ChallengeView>;
  current: { id: string; settle(state: string, reason: string | null): void; recheck(): Promise<void> } | null;
  stream: { close(): void } | null;
  screen: 'welcome' | 'activation' | 'home' | 'request' | 'result';
  wanted: string | null;
  /** Why this phone's push subscription could not be renewed on opening: the home screen says so. */
  pushProblem: HTMLElement | null;
} = { device: null, queue: new Map(), current: null, stream: null, screen: 'welcome', wanted: new URLSearchParams(location.search).get('demande'), pushProblem: null };

const net = () => document.getElementById('net')!;
function setNet(text: string, kind: 'live' | 'off' | 'none'): void {
  net().textContent = text;
  net().className = `net ${kind}`;
}

// ---- Welcome and activation ---------------------------------------------------------------------
function welcome(notice?: string): void {
  state.screen = 'welcome';
  setNet('', 'none');
  render(
    h('h1', {}, 'Bienvenue dans e-CPS'),
    notice ? h('p', { class: 'notice info', role: 'status' }, notice) : null,
    h('p', {}, 'e-CPS vous permet de vous connecter aux services numériques de santé : à chaque connexion, vous validez la demande ici, avec votre code PIN.'),
    h('p', {}, 'Pour l’activer, il vous faut votre identifiant national (ou votre numéro RPPS), ainsi que l’accès à l’adresse e-mail et au téléphone mobile enregistrés pour vous dans l’annuaire des professionnels de santé.'),
    h('button', { type: 'button', class: 'btn primary', onclick: () => activate(null) }, 'Activer mon e-CPS'),
  );
}

function activate(renewing: StoredDevice | null): void {
  state.screen = 'activation';
  stopLive();
  void startActivation({
    renewing,
    cancel: () => (state.device ? void enterHome(state.device) : welcome()),
    finish: async (device, renewed) => {
      const previous = state.device;
      await putDevice(device);
      state.device = device;
      // A renewal retires the previous registration of this phone (best effort: it may be locked).
      if (renewed && previous && previous.deviceId !== device.deviceId) {
        await signedCall(previous.privateKey, previous.deviceId, 'DELETE', '/device/v1/me').catch(() => undefined);
      }
      activated(device, renewed);
    },
  });
}

function activated(device: StoredDevice, renewed: boolean): void {
  state.screen = 'result';
  const status = h('div', {});
  render(
    h('h1', {}, renewed ? 'Votre e-CPS est renouvelée' : 'Votre e-CPS est activée'),
    h('p', { class: 'notice ok', role: 'status' }, 'Vous pouvez maintenant valider vos connexions depuis ce téléphone.'),
    h('p', {}, 'Un e-mail vous confirme cette activation. Si vous recevez un jour un tel e-mail sans avoir rien fait, suivez son lien « Ce n’était pas moi ».'),
    notificationsBlock(device, status),
    status,
    h('button', { type: 'button', class: 'btn primary', onclick: () => enterHome(device) }, 'Continuer'),
  );
}

function notificationsBlock(device: StoredDevice, status: HTMLElement): HTMLElement {
  const permission = notificationPermission();
  if (permission === 'unsupported') return h('p', { class: 'hint' }, 'Ce navigateur ne reçoit pas de notifications : ouvrez e-CPS quand vous vous connectez, les demandes en attente s’y affichent.');
  if (permission === 'denied') return h('p', { class: 'hint' }, 'Les notifications sont bloquées dans les réglages du navigateur. Les demandes restent visibles en ouvrant e-CPS.');
  if (permission === 'granted') return state.pushProblem ?? h('p', { class: 'hint' }, 'Notifications activées : une demande vous est signalée même application fermée.');
  return h('button', { type: 'button', class: 'btn', onclick: async (event: Event) => {
    (event.currentTarget as HTMLButtonElement).disabled = true;
    status.replaceChildren((await enableNotifications(device, true)).note);
  } }, 'Activer les notifications');
}

async function enableNotifications(device: StoredDevice, ask: boolean): Promise<{ ok: boolean; note: HTMLElement }> {
  const note = (ok: boolean, text: string) => ({ ok, note: h('p', { class: `notice ${ok ? 'ok' : 'info'}`, role: 'status' }, text) });
  try {
    const result = await subscribe(device, { ask });
    if (result === 'subscribed') return note(true, 'Notifications activées.');
    if (result === 'denied') return note(false, 'Notifications non autorisées : ouvrez e-CPS pour voir les demandes.');
    return note(false, 'Notifications indisponibles sur ce navigateur.');
  } catch {
    return note(false, 'Ce navigateur n’a pas pu s’abonner aux notifications. Gardez e-CPS ouverte, ou ouvrez-la quand vous vous connectez : les demandes s’y affichent.');
  }
}

// ---- Live delivery --------------------------------------------------------------------------------
function startLive(): void {
  const device = state.device;
  if (!device || state.stream) return;
  setNet('Connexion…', 'off');
  state.stream = openStream(device, {
    onConnection: (connected) => setNet(connected ? 'En direct' : 'Hors ligne — nouvelle tentative…', connected ? 'live' : 'off'),
    onPending: (list) => receive(list, true),
    onChallenge: (challenge) => receive([challenge], false),
    onSettled: ({ id, state: settled, reason }) => {
      state.queue.delete(id);
      if (state.current?.id === id) state.current.settle(settled, reason ?? null);
      else if (state.screen === 'home') home();
    },
    onDeviceGone: (code) => deviceGone(code),
  });
}

function stopLive(): void {
  state.stream?.close();
  state.stream = null;
}

/** Pulls the pending requests (on opening, on returning to the app, on demand). */
async function pull(): Promise<void> {
  const device = state.device;
  if (!device) return;
  try {
    const { challenges } = await signedCall<{ challenges: ChallengeView[] }>(device.privateKey, device.deviceId, 'GET', '/device/v1/challenges');
    receive(challenges, true);
  } catch (error) {
    if (error instanceof ApiError && ['DEVICE_LOCKED', 'DEVICE_REVOKED', 'DEVICE_UNKNOWN'].includes(error.code)) deviceGone(error.code);
    else if (error instanceof ApiError && error.code === 'NETWORK') setNet('Hors ligne', 'off');
  }
}

function receive(challenges: ChallengeView[], snapshot: boolean): void {
  if (snapshot) {
    const ids = new Set(challenges.map((c) => c.id));
    for (const id of state.queue.keys()) if (!ids.has(id) && state.current?.id !== id) state.queue.delete(id);
    // The request on screen ended while the app was hidden or offline (its "settled" event missed).
    if (state.current && !ids.has(state.current.id)) void state.current.recheck();
  }
  for (const c of challenges) state.queue.set(c.id, c);
  if (state.screen === 'home') showNext();
}

function showNext(): void {
  const wantedId = state.wanted;
  state.wanted = null;
  // Only a notified request may be asked for by name (the notification's tap): anyone can send a
  // link naming a request, and an attacker knows the id of the one their own login page opened.
  const named = wantedId ? state.queue.get(wantedId) : undefined;
  const wanted = named?.delivery === 'push' ? named : undefined;
  // A pending request comes first: it is what the person came for (often the one that replaced
  // the ended one), and a "not me" answer to it blocks its source all the same.
  if (wantedId && !wanted && state.queue.size === 0) return void showEnded(wantedId);
  // Then a notified request before those the defences held silent: an attacker can open many of
  // these, and the newest of them must not stand in front of the person's own login.
  const next = wanted ?? [...state.queue.values()].sort((a, b) => Number(b.delivery === 'push') - Number(a.delivery === 'push') || b.createdAt - a.createdAt)[0];
  if (next) showRequest(next);
  else home();
}

function showRequest(challenge: ChallengeView): void {
  const device = state.device!;
  state.screen = 'request';
  const handle = requestScreen(device, challenge, (outcome) => {
    state.queue.delete(challenge.id);
    state.current = null;
    result(outcome);
  });
  state.current = { id: challenge.id, settle: handle.settle, recheck: handle.recheck };
}

/**
 * A notification opened after its request ended: says how it ended, and offers to report it when
 * it ended unanswered. An attacker often withdraws each request at once; without this screen the
 * person would only find an empty home screen, with nothing to report.
 */
async function showEnded(id: string): Promise<void> {
  const device = state.device!;
  let outcome: ChallengeOutcome | undefined;
  try {
    outcome = await signedCall<ChallengeOutcome>(device.privateKey, device.deviceId, 'GET', `/device/v1/challenges/${encodeURIComponent(id)}/outcome`);
  } catch {
    // Unknown (too old, another professional's) or unreachable: the usual home screen.
  }
  if (state.screen !== 'home') return;
  if (!outcome || outcome.state === 'pending') return showNext();
  result({ kind: 'ended', message: endedRequest(outcome.state, outcome.reason), context: requestContext(outcome), ...(outcome.reportable ? { reportable: id } : {}) });
}

// ---- Outcomes -------------------------------------------------------------------------------------
function result(outcome: RequestOutcome): void {
  state.screen = 'result';
  const next = h('button', { type: 'button', class: 'btn primary', onclick: () => backHome() }, 'Terminé');
  if (outcome.kind === 'device_gone') return deviceGone(outcome.code);
  if (outcome.kind === 'not_me') return notMe();
  if (outcome.kind === 'approved') {
    return render(h('h1', {}, 'Connexion validée'), h('p', { class: 'notice ok', role: 'status' }, 'Vous pouvez revenir sur l’écran de connexion : il se met à jour tout seul.'), next);
  }
  if (outcome.kind === 'refused') {
    return render(h('h1', {}, 'Demande refusée'), h('p', { class: 'notice info', role: 'status' }, 'Personne n’a été connecté. Si c’était vous, recommencez la connexion depuis le service.'), next);
  }
  const ended = [h('h1', {}, 'Demande terminée'), outcome.context ?? null, h('p', { class: 'notice info', role: 'status' }, outcome.message)];
  if (!outcome.reportable) return render(...ended, next);
  // Withdrawn or expired before any answer: an attacker may withdraw each request at once, so
  // the person can still say it was not them (the source is then blocked as for "not me").
  const device = state.device!;
  const id = outcome.reportable;
  const status = h('div', {});
  const report = h('button', { type: 'button', class: 'btn link warn' }, 'Vous n’êtes pas à l’origine de cette demande ? Signalez-la');
  report.addEventListener('click', async () => {
    report.disabled = true;
    try {
      await signedCall(device.privateKey, device.deviceId, 'POST', `/device/v1/challenges/${encodeURIComponent(id)}/report`);
      notMe('Demande signalée');
    } catch (error) {
      if (error instanceof ApiError && ['DEVICE_LOCKED', 'DEVICE_REVOKED', 'DEVICE_UNKNOWN'].includes(error.code)) return deviceGone(error.code);
      status.replaceChildren(alertBox(describe(error)));
      report.disabled = error instanceof ApiError && error.status < 500 && error.code !== 'NETWORK';
    }
  });
  render(...ended, next, report, status);
}

function notMe(title = 'Demande refusée et signalée'): void {
  const device = state.device!;
  const status = h('div', {});
  const block = h('button', { type: 'button', class: 'btn' }, 'Bloquer les notifications');
  const leave = h('button', { type: 'button', class: 'btn link', onclick: () => backHome() }, 'Ne pas bloquer');
  block.addEventListener('click', async () => {
    block.disabled = true;
    try {
      await signedCall(device.privateKey, device.deviceId, 'PUT', '/device/v1/notification-settings', { pushEnabled: false });
      status.replaceChildren(h('p', { class: 'notice ok', role: 'status' }, 'Notifications bloquées. Pour vous connecter, ouvrez e-CPS : les demandes en attente s’y affichent. Vous pourrez les réactiver depuis l’accueil.'));
      block.remove();
      leave.textContent = 'Terminé';
    } catch (error) {
      const missing = error instanceof ApiError && error.status === 404;
      status.replaceChildren(alertBox(missing ? 'Ce serveur ne propose pas encore le blocage des notifications (voir docs/app.md). Vos refus sont tout de même signalés.' : describe(error)));
      block.disabled = false;
    }
  });
  render(
    h('h1', {}, title),
    h('p', { class: 'notice ok', role: 'status' }, 'Merci. Personne n’a été connecté : sans votre validation, aucune connexion n’est possible.'),
    h('p', {}, 'Quelqu’un connaît votre identifiant et tente de se connecter à votre place. Si les demandes se répètent, vous pouvez bloquer les notifications : vous pourrez toujours vous connecter en ouvrant e-CPS vous-même.'),
    block,
    status,
    leave,
  );
}

function deviceGone(code: string): void {
  stopLive();
  state.screen = 'result';
  setNet('', 'none');
  const device = state.device;
  render(
    h('h1', {}, code === 'DEVICE_LOCKED' ? 'e-CPS verrouillée' : 'e-CPS inactive'),
    alertBox(describe(new ApiError(code, 403, ''))),
    h('button', { type: 'button', class: 'btn primary', onclick: () => activate(device) }, 'Réactiver mon e-CPS'),
    h('button', { type: 'button', class: 'btn link', onclick: async () => {
      await forget();
      welcome('Cette e-CPS a été retirée de ce téléphone.');
    } }, 'Retirer de ce téléphone'),
  );
}

// ---- Home -----------------------------------------------------------------------------------------
function backHome(): void {
  state.screen = 'home';
  showNext();
}

async function enterHome(device: StoredDevice): Promise<void> {
  state.device = device;
  state.screen = 'home';
  home();
  startLive();
  await pull();
  // Not awaited: a push service that never answers must not hold the app's start.
  if (notificationPermission() === 'granted') {
    void enableNotifications(device, false).then(({ ok, note }) => {
      const changed = ok !== (state.pushProblem === null);
      state.pushProblem = ok ? null : note;
      if (changed && state.screen === 'home') home();
    });
  }
}

function home(): void {
  const device = state.device!;
  state.screen = 'home';
  const pending = state.queue.size;
  const status = h('div', {});
  const settings = h('div', { class: 'settings' });
  render(
    h('h1', {}, pending ? `${pending} demande${pending > 1 ? 's' : ''} en attente` : 'Aucune demande en attente'),
    pending ? h('button', { type: 'button', class: 'btn primary', onclick: () => showNext() }, 'Examiner la demande') : h('p', { class: 'hint' }, 'Quand vous vous connectez à un service de santé, la demande s’affiche ici.'),
    h('button', { type: 'button', class: 'btn', onclick: () => pull() }, 'Actualiser'),
    h('section', { class: 'card', 'aria-label': 'Mon e-CPS' },
      h('h2', {}, 'Mon e-CPS'),
      h('p', {}, device.name),
      h('p', { class: 'hint' }, `Identifiant ${device.nationalId} · activée le ${formatDate(device.activatedAt)}`),
      notificationsBlock(device, status),
      status,
      settings,
      h('button', { type: 'button', class: 'btn', onclick: () => renewScreen(device) }, 'Renouveler mon e-CPS'),
      h('button', { type: 'button', class: 'btn danger', onclick: () => deleteScreen(device) }, 'Supprimer ma e-CPS'),
    ),
  );
  void serverSettings(device, settings);
}

/** The defences' notification settings and attack summary, when the provider offers them. */
async function serverSettings(device: StoredDevice, into: HTMLElement): Promise<void> {
  try {
    const settings = await signedCall<{ pushEnabled: boolean }>(device.privateKey, device.deviceId, 'GET', '/device/v1/notification-settings');
    const summary = await signedCall<{ blocked: number; reports: number; message: string }>(device.privateKey, device.deviceId, 'GET', '/device/v1/attack-summary').catch(() => undefined);
    into.replaceChildren(
      summary && summary.blocked + summary.reports > 0 ? h('p', { class: 'notice info' }, summary.message) : '',
      settings.pushEnabled
        ? ''
        : h('p', { class: 'hint' }, 'Vous avez bloqué les notifications : les demandes ne s’affichent qu’en ouvrant e-CPS. ',
          h('button', { type: 'button', class: 'btn link', onclick: async () => {
            await signedCall(device.privateKey, device.deviceId, 'PUT', '/device/v1/notification-settings', { pushEnabled: true }).catch(() => undefined);
            void serverSettings(device, into);
          } }, 'Réactiver les notifications')),
    );
  } catch {
    into.replaceChildren();
  }
}

function renewScreen(device: StoredDevice): void {
  state.screen = 'result';
  render(
    h('h1', {}, 'Renouveler mon e-CPS'),
    h('p', {}, 'Le renouvellement suit la même procédure que l’activation : deux codes reçus par e-mail et par SMS, puis un nouveau code PIN. Votre e-CPS actuelle reste utilisable jusqu’à la fin de la procédure.'),
    h('button', { type: 'button', class: 'btn primary', onclick: () => activate(device) }, 'Commencer'),
    h('button', { type: 'button', class: 'btn link', onclick: () => backHome() }, 'Annuler'),
  );
}

function deleteScreen(device: StoredDevice): void {
  state.screen = 'result';
  const message = h('div', {});
  const confirm = h('button', { type: 'button', class: 'btn danger' }, 'Supprimer définitivement');
  confirm.addEventListener('click', async () => {
    confirm.disabled = true;
    try {
      await signedCall(device.privateKey, device.deviceId, 'DELETE', '/device/v1/me');
    } catch (error) {
      // Already revoked, locked or unknown on the server: removing it here is all that is left.
      if (!(error instanceof ApiError) || error.status !== 401 && error.status !== 403) {
        confirm.disabled = false;
        message.replaceChildren(alertBox(describe(error)));
        return;
      }
    }
    await forget();
    welcome('Votre e-CPS a été supprimée de ce téléphone.');
  });
  render(
    h('h1', {}, 'Supprimer ma e-CPS ?'),
    h('p', {}, 'Ce téléphone ne pourra plus valider vos connexions. Vous pourrez réactiver une e-CPS à tout moment avec vos codes reçus par e-mail et SMS.'),
    message,
    h('div', { class: 'choices' }, h('button', { type: 'button', class: 'btn choice', onclick: () => backHome() }, 'Annuler'), confirm),
  );
}

async function forget(): Promise<void> {
  stopLive();
  state.queue.clear();
  state.device = null;
  await unsubscribe().catch(() => undefined);
  await clearDevice();
  await clearPendingActivation();
}

// ---- Start ----------------------------------------------------------------------------------------
async function boot(): Promise<void> {
  void registerServiceWorker();
  navigator.serviceWorker?.addEventListener('message', (event: MessageEvent<{ type?: string; challengeId?: string }>) => {
    if (event.data?.type !== 'challenge') return;
    state.wanted = event.data.challengeId ?? null;
    void pull();
  });
  document.addEventListener('visibilitychange', () => {
    if (!state.device || state.screen === 'activation') return;
    if (document.visibilityState === 'hidden') stopLive();
    else {
      startLive();
      void pull();
    }
  });
  window.addEventListener('online', () => void pull());
  let device: StoredDevice | undefined;
  try {
    device = await getDevice();
  } catch {
    return render(h('h1', {}, 'Stockage indisponible'), alertBox('Ce navigateur ne permet pas de conserver la clé de votre e-CPS (navigation privée ?). Ouvrez e-CPS dans un navigateur standard.'));
  }
  if (!device) return welcome();
  await enterHome(device);
}

if (pushSupported()) document.documentElement.dataset.push = 'yes';
void boot();
