// Live status of a login challenge: SSE first, polling as fallback, and the countdown.
// Once approved and handed to the interaction (`resume`), the page goes where oidc-provider
// finishes the login; any other outcome submits the continue form, the same path as the
// no-JavaScript button (it also finishes an approval that could not be handed over).
(() => {
  const live = document.getElementById('live');
  if (!live) return;
  const status = document.getElementById('status');
  const countdown = document.getElementById('countdown');
  const form = document.getElementById('continue');
  // Counted from the server's remaining time, so a wrong clock on this computer does not matter.
  const deadline = Date.now() + Number(countdown.dataset.secondsLeft) * 1000;
  let settled = false;
  const texts = {
    denied: 'La demande a été refusée.',
    expired: 'La demande a expiré.',
    failed: 'La validation a échoué.',
    cancelled: 'La demande a été annulée.',
  };

  function settle(state, resume) {
    if (settled || state === 'pending') return;
    settled = true;
    if (state === 'approved') {
      status.textContent = 'Connexion validée, redirection…';
      status.className = 'ok';
    } else {
      status.textContent = texts[state] || 'La demande est terminée.';
      status.className = 'error';
    }
    if (state === 'approved' && resume) window.location.assign(live.dataset.resumeUrl);
    // The server renders the outcome page from the continue form.
    else form.submit();
  }

  const tick = setInterval(() => {
    const left = Math.max(0, Math.round((deadline - Date.now()) / 1000));
    countdown.textContent = left > 0 ? `La demande expire dans ${left} secondes.` : 'La demande a expiré.';
    if (left === 0 || settled) clearInterval(tick);
  }, 1000);

  let pollTimer;
  function poll() {
    fetch(live.dataset.statusUrl, { headers: { accept: 'application/json' }, credentials: 'same-origin' })
      .then((r) => (r.ok ? r.json() : { state: 'pending' }))
      .then((body) => settle(body.state, body.resume))
      .catch(() => {})
      .finally(() => { if (!settled) pollTimer = setTimeout(poll, 2000); });
  }

  // Leaving by one of the page's buttons (another identifier, cancel) withdraws the request: the
  // page must not follow that outcome to the continue form, which would replace where it goes.
  for (const leave of document.querySelectorAll('form[data-leave]')) {
    leave.addEventListener('submit', () => { settled = true; });
  }
  // Back to this page from the browser's history cache: its state is stale, ask the server again.
  window.addEventListener('pageshow', (event) => { if (event.persisted) window.location.reload(); });

  if (window.EventSource) {
    const source = new EventSource(live.dataset.eventsUrl);
    source.addEventListener('state', (event) => {
      const { state, resume } = JSON.parse(event.data);
      if (state !== 'pending') { source.close(); settle(state, resume); }
    });
    source.onerror = () => { if (!pollTimer && !settled) poll(); };
  } else {
    poll();
  }
})();
