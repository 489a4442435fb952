// The wallet's progressive enhancements; every page works without them.
// 1. Forms marked data-confirm ask before submitting (ending sessions, revoking a device).
// 2. Back-channel logout deliveries still pending are refreshed until each is settled.
(() => {
  for (const form of document.querySelectorAll('form[data-confirm]')) {
    form.addEventListener('submit', (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  }

  const table = document.getElementById('deliveries');
  const url = table && table.dataset.pollUrl;
  if (!url) return;
  const tones = { delivered: 'badge ok', failed: 'badge warn', pending: 'badge' };
  let rounds = 0;
  function refresh() {
    rounds += 1;
    fetch(url, { headers: { accept: 'application/json' }, credentials: 'same-origin' })
      .then((r) => (r.ok ? r.json() : { deliveries: [] }))
      .then((body) => {
        let pending = false;
        for (const d of body.deliveries || []) {
          const row = table.querySelector(`tr[data-delivery="${CSS.escape(d.id)}"]`);
          const badge = row && row.querySelector('[data-state]');
          if (!badge) continue;
          if (badge.textContent !== d.text) badge.textContent = d.text;
          badge.dataset.state = d.state;
          badge.className = tones[d.state] || 'badge';
          if (d.state === 'pending') pending = true;
        }
        // Retries are minutes apart: after the first minute, poll slowly.
        if (pending) setTimeout(refresh, rounds < 20 ? 3000 : 30000);
      })
      .catch(() => setTimeout(refresh, 30000));
  }
  setTimeout(refresh, 2000);
})();
