// The end of every benchmarked login, for each target alike: code → tokens (ID token checked) → userinfo.
import * as client from 'openid-client';

export async function redeemCode(rp: client.Configuration, callbackUrl: URL, login: { verifier: string; state: string; nonce: string }, sub: string): Promise<void> {
  const tokens = await client.authorizationCodeGrant(rp, callbackUrl, { pkceCodeVerifier: login.verifier, expectedState: login.state, expectedNonce: login.nonce });
  if (tokens.claims()?.sub !== sub) throw new Error(`ID token for ${tokens.claims()?.sub}, expected ${sub}`);
  const userinfo = await client.fetchUserInfo(rp, tokens.access_token, sub);
  if (!userinfo.family_name) throw new Error('userinfo without family_name');
}
