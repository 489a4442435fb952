/**
 * Claims in the national provider's shape, which relying services already parse. `sub` is set by
 * the OIDC layer, not here. Field names and order follow the national provider's userinfo; its
 * activities carry codes only, so our extra labels (libelleCommune, libellePays...) are left out:
 * strict deserialisers (e.g. Jackson's default FAIL_ON_UNKNOWN_PROPERTIES) would reject them.
 */
import type { Activity, Professional } from './model.ts';

const ACTIVITY_CLAIMS = [
  'codeModeExercice',
  'codeSecteurDactivite',
  'codeSectionPharmacien',
  'codeRole',
  'codeGenreActivite',
  'numeroSiretSite',
  'numeroSirenSite',
  'numeroFinessSite',
  'numeroFinessetablissementJuridique',
  'identifiantTechniqueDeLaStructure',
  'raisonSocialeSite',
  'enseigneCommercialeSite',
  'complementDestinataire',
  'complementPointGeographique',
  'numeroVoie',
  'indiceRepetitionVoie',
  'codeTypeDeVoie',
  'libelleVoie',
  'mentionDistribution',
  'bureauCedex',
  'codePostal',
  'codeCommune',
  'codePays',
  'telephone',
  'telephone2',
  'telecopie',
  'adresseEMail',
  'codeDepartement',
  'ancienIdentifiantDeLaStructure',
  'autoriteDenregistrement',
] as const satisfies readonly (keyof Activity)[];

const ORIGIN: Record<string, string> = { '8': 'RPPS', '0': 'ADELI' };

function activityClaims(activity: Activity): Record<string, string> {
  const out: Record<string, string> = {};
  // Records stored before a column existed lack it: always emit every key, empty when unknown.
  for (const key of ACTIVITY_CLAIMS) out[key] = activity[key] ?? '';
  return out;
}

export function claimsFor(p: Professional): Record<string, unknown> {
  return {
    SubjectNameID: p.nationalId,
    preferred_username: p.nationalId,
    given_name: p.givenName,
    family_name: p.familyName,
    SubjectRefPro: {
      codeCivilite: p.exercises[0]?.codeCivilite ?? '',
      exercices: p.exercises.map((e) => ({
        codeProfession: e.codeProfession,
        codeCategorieProfessionnelle: e.codeCategorieProfessionnelle,
        codeCiviliteDexercice: e.codeCiviliteDexercice,
        nomDexercice: e.nomDexercice,
        prenomDexercice: e.prenomDexercice,
        codeTypeSavoirFaire: e.codeTypeSavoirFaire,
        codeSavoirFaire: e.codeSavoirFaire,
        activities: e.activities.map(activityClaims),
      })),
    },
    otherIds: [{ identifiant: p.identifier, origine: ORIGIN[p.idType] ?? p.idType, qualite: 1 }],
  };
}
