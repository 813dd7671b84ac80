// Proof Key for Code Exchange (RFC 7636) with the S256 method, on the Web Crypto API.

/** base64url without padding (RFC 7636 appendix A). */
export function base64url(bytes: Uint8Array): string {
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** A code verifier: 32 random octets, base64url (43 characters). `octets` is for tests. */
export function newVerifier(octets: Uint8Array = crypto.getRandomValues(new Uint8Array(32))): string {
  return base64url(octets);
}

/** code_challenge = BASE64URL(SHA256(ASCII(code_verifier))). */
export async function challengeS256(verifier: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
  return base64url(new Uint8Array(digest));
}
