import type { Config } from '../config/index.ts';

/** The defences' settings, from the configuration (see src/config/index.ts for each default). */
export interface DefencePolicy {
  /** false: no throttle, block or risk signal (the simulator's baselines); refused in production. */
  enabled: boolean;
  /** `adaptive`: typed code for untrusted or risky browsers, number matching otherwise. */
  codeMode: 'adaptive' | 'typed' | 'pick';
  /** Services (client ids) that always get the typed code. */
  typedClients: ReadonlySet<string>;
  perIpPerMinute: number;
  perPrefixPerMinute: number;
  identifiersPerSourcePerHour: number;
  trustedPushesPerHour: number;
  untrustedPushesPerDay: number;
  backoffBaseSeconds: number;
  backoffMaxSeconds: number;
  underAttackHours: number;
  notMeBlockDays: number;
  wrongCodeBlockHours: number;
  globalBlockReports: number;
  globalBlockHours: number;
  breakerPushesPerMinute: number;
  trustedBrowserDays: number;
}

export function policyFromConfig(config: Config): DefencePolicy {
  return {
    enabled: config.defences,
    codeMode: config.codeMode,
    typedClients: new Set(config.typedCodeClients.split(',').map((s) => s.trim()).filter(Boolean)),
    perIpPerMinute: config.challengesPerIpPerMinute,
    perPrefixPerMinute: config.challengesPerPrefixPerMinute ?? 3 * config.challengesPerIpPerMinute,
    identifiersPerSourcePerHour: config.identifiersPerSourcePerHour,
    trustedPushesPerHour: config.challengesPerProfessionalPerHour,
    untrustedPushesPerDay: config.untrustedPushesPerDay,
    backoffBaseSeconds: config.backoffBaseSeconds,
    backoffMaxSeconds: config.backoffMaxSeconds,
    underAttackHours: config.underAttackHours,
    notMeBlockDays: config.notMeBlockDays,
    wrongCodeBlockHours: config.wrongCodeBlockHours,
    globalBlockReports: config.globalBlockReports,
    globalBlockHours: config.globalBlockHours,
    breakerPushesPerMinute: config.breakerPushesPerMinute,
    trustedBrowserDays: config.trustedBrowserDays,
  };
}
