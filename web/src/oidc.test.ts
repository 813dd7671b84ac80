import { describe, expect, it } from "vitest";
import { authorizeUrl, beginSignIn, completeSignIn, PENDING_KEY, strippedUrl } from "./oidc";
import { challengeS256 } from "./pkce";
import { fakeJwt, memoryStore } from "./testutil";

const SETTINGS = { issuer: "https://id.example/realms/library/", clientId: "bookrental-web", scope: "openid" };
const META = { authorization_endpoint: "https://id.example/auth", token_endpoint: "https://id.example/token" };

/** A provider: discovery and the token endpoint; records the token requests. */
function provider(answer: { status: number; body: unknown }) {
  const exchanges: URLSearchParams[] = [];
  const fetcher = (async (input: RequestInfo | URL, init?: RequestInit) => {
    const url = String(input);
    if (url === "https://id.example/realms/library/.well-known/openid-configuration") return Response.json(META);
    if (url === META.token_endpoint && init?.method === "POST") {
      exchanges.push(new URLSearchParams(String(init.body)));
      return Response.json(answer.body, { status: answer.status });
    }
    return new Response("not found", { status: 404 });
  }) as typeof fetch;
  return { fetcher, exchanges };
}

describe("OIDC authorization code with PKCE", () => {
  it("sends the browser to the provider with an S256 challenge of the verifier it keeps", async () => {
    const store = memoryStore();
    const { fetcher } = provider({ status: 200, body: {} });
    const url = new URL(await beginSignIn(SETTINGS, store, "https://app.example/", fetcher));
    const pending = JSON.parse(store.map.get(PENDING_KEY)!) as { verifier: string; state: string };
    expect(url.origin + url.pathname).toBe(META.authorization_endpoint);
    expect(Object.fromEntries(url.searchParams)).toEqual({
      response_type: "code",
      client_id: "bookrental-web",
      redirect_uri: "https://app.example/",
      scope: "openid",
      state: pending.state,
      code_challenge: await challengeS256(pending.verifier),
      code_challenge_method: "S256",
    });
    expect(url.searchParams.get("code_challenge")).not.toBe(pending.verifier);
  });

  it("exchanges the code with the verifier and returns the token's session", async () => {
    const store = memoryStore();
    store.setItem(PENDING_KEY, JSON.stringify({ verifier: "v".repeat(43), state: "s1" }));
    const token = fakeJwt({ sub: "alice", roles: "customer" });
    const { fetcher, exchanges } = provider({ status: 200, body: { access_token: token, expires_in: 300 } });
    const session = await completeSignIn(SETTINGS, store, "https://app.example/?code=c0de&state=s1#/books", 1000, fetcher);
    expect(session).toEqual({ token, user: "alice", roles: ["customer"], expiresAt: 301_000 });
    expect(Object.fromEntries(exchanges[0])).toEqual({
      grant_type: "authorization_code",
      code: "c0de",
      redirect_uri: "https://app.example/",
      client_id: "bookrental-web",
      code_verifier: "v".repeat(43),
    });
    expect(store.map.has(PENDING_KEY)).toBe(false);
  });

  it("refuses an answer whose state is not this tab's", async () => {
    const store = memoryStore();
    store.setItem(PENDING_KEY, JSON.stringify({ verifier: "v", state: "mine" }));
    const { fetcher, exchanges } = provider({ status: 200, body: {} });
    await expect(completeSignIn(SETTINGS, store, "https://app.example/?code=c&state=theirs", 0, fetcher)).rejects.toThrow(/does not match/);
    expect(exchanges).toHaveLength(0);
  });

  it("reports the provider's refusal of the exchange", async () => {
    const store = memoryStore();
    store.setItem(PENDING_KEY, JSON.stringify({ verifier: "v", state: "s" }));
    const { fetcher } = provider({ status: 400, body: { error: "invalid_grant", error_description: "code expired" } });
    await expect(completeSignIn(SETTINGS, store, "https://app.example/?code=c&state=s", 0, fetcher)).rejects.toThrow("code expired");
  });

  it("does nothing on a page without the provider's answer", async () => {
    const { fetcher } = provider({ status: 200, body: {} });
    expect(await completeSignIn(SETTINGS, memoryStore(), "https://app.example/#/books", 0, fetcher)).toBeNull();
  });

  it("takes the code and state out of the URL, keeping the rest", () => {
    expect(strippedUrl("https://app.example/?code=c&state=s&x=1#/books")).toBe("/?x=1#/books");
    expect(strippedUrl("https://app.example/?code=c&state=s&session_state=z")).toBe("/");
  });

  it("builds the authorization URL on the provider's endpoint, keeping its own query", () => {
    const url = new URL(authorizeUrl({ ...META, authorization_endpoint: "https://id.example/auth?kc=1" }, SETTINGS, "r", "st", "ch"));
    expect(url.searchParams.get("kc")).toBe("1");
    expect(url.searchParams.get("code_challenge")).toBe("ch");
  });
});
