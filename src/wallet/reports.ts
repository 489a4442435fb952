import type { AuditLog } from '../audit/log.ts';
import type { Clock } from '../lib/clock.ts';
import type { Counter } from '../lib/metrics.ts';
import { randomId } from '../lib/crypto.ts';
import type { ProviderSessions } from './sessions.ts';
import type { ConnectionHistory } from './history.ts';
import type { Report, ReportStore } from './store.ts';

/**
 * "Signaler une activité suspecte": records the report, ends every session of the professional
 * and tells the operator through the audit log (`wallet.report`, with the reported attempt's
 * source when one was picked) and the `vigie_wallet_reports_total` counter.
 */
export class SuspiciousActivityReports {
  readonly #store: ReportStore;
  readonly #sessions: ProviderSessions;
  readonly #history: ConnectionHistory;
  readonly #audit: AuditLog;
  readonly #clock: Clock;
  readonly #counter: Counter;

  constructor(deps: { store: ReportStore; sessions: ProviderSessions; history: ConnectionHistory; audit: AuditLog; clock: Clock; counter: Counter }) {
    this.#store = deps.store;
    this.#sessions = deps.sessions;
    this.#history = deps.history;
    this.#audit = deps.audit;
    this.#clock = deps.clock;
    this.#counter = deps.counter;
  }

  async report(input: { nationalId: string; attempt?: string | undefined; comment?: string | undefined; actor: string }): Promise<{ report: Report; sessionsEnded: number }> {
    // The attempt must be one of the professional's own: look it up in their history.
    const attempt = input.attempt ? await this.#findAttempt(input.nationalId, input.attempt) : undefined;
    const ended = await this.#sessions.endAll(input.nationalId, { actor: input.actor, reason: 'report' });
    const report: Report = {
      id: randomId(),
      nationalId: input.nationalId,
      attempt: attempt?.key ?? null,
      comment: input.comment?.trim() || null,
      sessionsEnded: ended.sessionsEnded,
      createdAt: this.#clock.now(),
    };
    await this.#store.create(report);
    this.#counter.inc();
    await this.#audit.append({
      actor: input.actor,
      event: 'wallet.report',
      subject: input.nationalId,
      details: {
        reportId: report.id,
        sessionsEnded: ended.sessionsEnded,
        hasComment: report.comment !== null,
        ...(attempt ? { attempt: { key: attempt.key, at: attempt.at, clientId: attempt.clientId, outcome: attempt.outcome, ip: attempt.ip, browser: attempt.browser, place: attempt.place } } : {}),
      },
    });
    return { report, sessionsEnded: ended.sessionsEnded };
  }

  async #findAttempt(nationalId: string, key: string) {
    const all = await this.#history.all(nationalId, 2000);
    return all.find((a) => a.key === key);
  }
}
