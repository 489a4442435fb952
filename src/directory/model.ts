/** One practice of a professional at one site (one row of the open-data extract). */
export interface Activity {
  codeModeExercice: string;
  codeSecteurDactivite: string;
  codeSectionPharmacien: string;
  codeRole: string;
  codeGenreActivite: string;
  numeroSiretSite: string;
  numeroSirenSite: string;
  numeroFinessSite: string;
  numeroFinessetablissementJuridique: string;
  identifiantTechniqueDeLaStructure: string;
  raisonSocialeSite: string;
  enseigneCommercialeSite: string;
  complementDestinataire: string;
  complementPointGeographique: string;
  numeroVoie: string;
  indiceRepetitionVoie: string;
  codeTypeDeVoie: string;
  libelleTypeDeVoie: string;
  libelleVoie: string;
  mentionDistribution: string;
  bureauCedex: string;
  codePostal: string;
  codeCommune: string;
  libelleCommune: string;
  codePays: string;
  libellePays: string;
  telephone: string;
  telephone2: string;
  telecopie: string;
  adresseEMail: string;
  codeDepartement: string;
  libelleDepartement: string;
  ancienIdentifiantDeLaStructure: string;
  autoriteDenregistrement: string;
}

/** A profession (with its know-how) exercised by a professional, grouping its activities. */
export interface Exercise {
  codeProfession: string;
  libelleProfession: string;
  codeCategorieProfessionnelle: string;
  codeCiviliteDexercice: string;
  codeCivilite: string;
  nomDexercice: string;
  prenomDexercice: string;
  codeTypeSavoirFaire: string;
  codeSavoirFaire: string;
  activities: Activity[];
}

export interface Professional {
  /** "Identification nationale PP": `8` + RPPS, or `0` + ADELI. */
  nationalId: string;
  idType: string;
  identifier: string;
  familyName: string;
  givenName: string;
  exercises: Exercise[];
}

export interface Contacts {
  nationalId: string;
  email: string | null;
  mobile: string | null;
}
