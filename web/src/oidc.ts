// Production sign-in: OpenID Connect authorization code flow with PKCE (S256). The app is a
// public client: no secret; the verifier and state live in sessionStorage between the
// redirect to the provider and the return, and the code is stripped from the URL at once.
import { challengeS256, newVerifier } from "./pkce";
import { jwtClaims, newSession, rolesOf, type KeyValueStore, type Session } from "./session";

export const PENDING_KEY = "bookrental.oidc";

export interface OidcSettings {
  issuer: string;
  clientId: string;
  scope: string;
}

export interface ProviderMetadata {
  authorization_endpoint: string;
  token_endpoint: string;
}

/** The provider's metadata from {issuer}/.well-known/openid-configuration. */
export async function discover(issuer: string, fetcher: typeof fetch = fetch): Promise<ProviderMetadata> {
  const url = `${issuer.replace(/\/+$/, "")}/.well-known/openid-configuration`;
  const response = await fetcher(url, { headers: { accept: "application/json" } });
  if (!response.ok) throw new Error(`OpenID discovery ${url}: HTTP ${response.status}`);
  const meta = (await response.json()) as Partial<ProviderMetadata>;
  if (!meta.authorization_endpoint || !meta.token_endpoint) {
    throw new Error(`OpenID discovery ${url}: no authorization_endpoint or token_endpoint`);
  }
  return { authorization_endpoint: meta.authorization_endpoint, token_endpoint: meta.token_endpoint };
}

/** Where the provider sends the browser back: the app's own page, without query or fragment. */
export function redirectUri(location: { origin: string; pathname: string }): string {
  return location.origin + location.pathname;
}

export function authorizeUrl(
  meta: ProviderMetadata,
  settings: OidcSettings,
  redirect: string,
  state: string,
  challenge: string,
): string {
  const url = new URL(meta.authorization_endpoint);
  url.searchParams.set("response_type", "code");
  url.searchParams.set("client_id", settings.clientId);
  url.searchParams.set("redirect_uri", redirect);
  url.searchParams.set("scope", settings.scope);
  url.searchParams.set("state", state);
  url.searchParams.set("code_challenge", challenge);
  url.searchParams.set("code_challenge_method", "S256");
  return url.toString();
}

/** Starts the sign-in: remembers verifier and state, and returns the URL to send the browser to. */
export async function beginSignIn(
  settings: OidcSettings,
  store: KeyValueStore,
  redirect: string,
  fetcher: typeof fetch = fetch,
): Promise<string> {
  const meta = await discover(settings.issuer, fetcher);
  const verifier = newVerifier();
  const state = newVerifier();
  store.setItem(PENDING_KEY, JSON.stringify({ verifier, state }));
  return authorizeUrl(meta, settings, redirect, state, await challengeS256(verifier));
}

/** The URL without the provider's answer (code, state, session_state, error...). */
export function strippedUrl(href: string): string {
  const url = new URL(href);
  for (const name of ["code", "state", "session_state", "iss", "error", "error_description"]) {
    url.searchParams.delete(name);
  }
  return url.pathname + url.search + url.hash;
}

/**
 * On the return from the provider (?code=...&state=...): exchanges the code for a token and
 * returns the session; null when the URL carries no answer. Throws on a refusal, a state
 * that does not match, or a failed exchange.
 */
export async function completeSignIn(
  settings: OidcSettings,
  store: KeyValueStore,
  href: string,
  now: number,
  fetcher: typeof fetch = fetch,
): Promise<Session | null> {
  const url = new URL(href);
  const error = url.searchParams.get("error");
  const code = url.searchParams.get("code");
  if (!code && !error) return null;
  const pending = store.getItem(PENDING_KEY);
  store.removeItem(PENDING_KEY);
  if (error) throw new Error(url.searchParams.get("error_description") || error);
  const { verifier, state } = (pending ? JSON.parse(pending) : {}) as { verifier?: string; state?: string };
  if (!verifier || state !== url.searchParams.get("state")) {
    throw new Error("the sign-in answer does not match this tab's request; sign in again");
  }
  const meta = await discover(settings.issuer, fetcher);
  const response = await fetcher(meta.token_endpoint, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", accept: "application/json" },
    body: new URLSearchParams({
      grant_type: "authorization_code",
      code: code ?? "",
      redirect_uri: redirectUri(url),
      client_id: settings.clientId,
      code_verifier: verifier,
    }).toString(),
  });
  const body = (await response.json().catch(() => ({}))) as Record<string, unknown>;
  if (!response.ok || typeof body.access_token !== "string") {
    const reason = typeof body.error_description === "string" ? body.error_description : body.error;
    throw new Error(`the sign-in could not be completed: ${String(reason ?? `HTTP ${response.status}`)}`);
  }
  const token = body.access_token;
  const claims = jwtClaims(token);
  const expiresIn =
    typeof body.expires_in === "number"
      ? body.expires_in
      : typeof claims.exp === "number"
        ? claims.exp - Math.floor(now / 1000)
        : 300;
  return newSession(token, String(claims.sub ?? ""), rolesOf(claims), expiresIn, now);
}
