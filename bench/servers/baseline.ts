// Child of bench/login.ts: the baseline, a bare oidc-provider v9 on node:http with its default
// in-memory adapter, configured like Vigie's createProvider (routes, scopes, claims, acr, PKCE
// required, ES256 ID tokens, signed lax cookies, TTLs, implied consent) but whose interaction
// endpoint logs a fixed account in at once: no login page, no push challenge, no database.
import { createServer } from 'node:http';
import { randomBytes } from 'node:crypto';
import Provider, { type Configuration } from 'oidc-provider';
import { calculateJwkThumbprint, exportJWK, generateKeyPair } from 'jose';
import { ACR_EIDAS1, AMR_ECPS, protocolSettings } from '../../src/oidc/provider.ts';
import { runServerChild } from '../support/processes.ts';

export interface BaselineReady {
  issuer: string;
  accountId: string;
}

const ACCOUNT_ID = '810000000017';
/** Claims of about the size Vigie returns for the demo professional (one exercise, two activities). */
const CLAIMS = {
  SubjectNameID: ACCOUNT_ID,
  preferred_username: ACCOUNT_ID,
  given_name: 'Camille',
  family_name: 'MARTIN',
  SubjectRefPro: {
    codeCivilite: 'MME',
    exercices: [
      {
        codeProfession: '10',
        codeCategorieProfessionnelle: 'C',
        codeCiviliteDexercice: 'DR',
        nomDexercice: 'MARTIN',
        prenomDexercice: 'Camille',
        codeTypeSavoirFaire: 'S',
        codeSavoirFaire: 'SM26',
        activities: [
          { codeModeExercice: 'L', codeSecteurDactivite: 'SA07', codeRole: 'FON-01', codeGenreActivite: 'GENR01', numeroSiretSite: '12345678200010', numeroSirenSite: '123456782', identifiantTechniqueDeLaStructure: 'R10000000000017', raisonSocialeSite: 'CABINET DU DR CAMILLE MARTIN', numeroVoie: '12', codeTypeDeVoie: 'R', libelleVoie: 'DE LA REPUBLIQUE', bureauCedex: '69002 LYON', codePostal: '69002', codeCommune: '69382', codePays: '99000', telephone: '0478000017', adresseEMail: 'cabinet.martin@cabinet.demo.vigie.test', codeDepartement: '69' },
          { codeModeExercice: 'S', codeSecteurDactivite: 'SA01', codeRole: 'FON-05', codeGenreActivite: 'GENR01', numeroSiretSite: '51544454500013', numeroSirenSite: '515444545', numeroFinessSite: '695110982', numeroFinessetablissementJuridique: '691193713', identifiantTechniqueDeLaStructure: '1695110982', raisonSocialeSite: 'CENTRE HOSPITALIER DE VILLEURBANNE', numeroVoie: '69', codeTypeDeVoie: 'CHE', libelleVoie: 'DES ECOLES', bureauCedex: '69100 VILLEURBANNE', codePostal: '69100', codeCommune: '69266', codePays: '99000', telephone: '0451739996', codeDepartement: '69' },
        ],
      },
    ],
  },
  otherIds: [{ identifiant: '10000000017', origine: 'RPPS', qualite: 1 }],
};

await runServerChild<BaselineReady>(async () => {
  const env = process.env;
  const port = Number(env.PORT);
  const issuer = `http://127.0.0.1:${port}`;
  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  const jwk = await exportJWK(privateKey);
  const signingKey = { ...jwk, kid: await calculateJwkThumbprint(jwk), alg: 'ES256', use: 'sig' };
  const sessionTtlSeconds = 10 * 3600;

  const configuration: Configuration = {
    jwks: { keys: [signingKey] as never },
    cookies: { keys: [randomBytes(32).toString('base64url')], long: { signed: true, httpOnly: true, sameSite: 'lax' }, short: { signed: true, httpOnly: true, sameSite: 'lax' } },
    ...protocolSettings(sessionTtlSeconds),
    async findAccount(_ctx, sub) {
      if (sub !== ACCOUNT_ID) return undefined;
      return { accountId: sub, claims: async () => ({ sub, ...CLAIMS }) };
    },
    clients: [
      {
        client_id: env.BENCH_CLIENT_ID!,
        client_name: 'Service de banc',
        client_secret: env.BENCH_CLIENT_SECRET!,
        redirect_uris: [env.BENCH_REDIRECT_URI!],
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_basic',
      },
    ],
  };
  const provider = new Provider(issuer, configuration);
  const callback = provider.callback();

  const server = createServer((req, res) => {
    if (!req.url?.startsWith('/interaction/')) return void callback(req, res);
    // The whole "login": the interaction is finished at once for the fixed account.
    (async () => {
      const details = await provider.interactionDetails(req, res);
      const result = details.prompt.name === 'login' ? { login: { accountId: ACCOUNT_ID, acr: ACR_EIDAS1, amr: AMR_ECPS, remember: true } } : {};
      await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: details.prompt.name !== 'login' });
    })().catch((error: unknown) => {
      res.statusCode = 500;
      res.end(error instanceof Error ? error.message : String(error));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  return {
    payload: { issuer, accountId: ACCOUNT_ID },
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
});
