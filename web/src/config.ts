// GET /config.json (served by the gateway, no token) says how people sign in here.

export type AppConfig =
  | { signIn: "dev" }
  | { signIn: "oidc"; issuer: string; clientId: string; scope: string };

/** The config.json body as an AppConfig; throws with a readable message when it is not one. */
export function parseConfig(body: unknown): AppConfig {
  const c = body as Record<string, unknown>;
  if (typeof c !== "object" || c === null) throw new Error("config.json is not an object");
  if (c.signIn === "dev") return { signIn: "dev" };
  if (c.signIn === "oidc") {
    if (typeof c.issuer !== "string" || !c.issuer) throw new Error("config.json: oidc needs an issuer");
    if (typeof c.clientId !== "string" || !c.clientId) throw new Error("config.json: oidc needs a clientId");
    const scope = typeof c.scope === "string" && c.scope ? c.scope : "openid";
    return { signIn: "oidc", issuer: c.issuer, clientId: c.clientId, scope };
  }
  throw new Error(`config.json: signIn must be "dev" or "oidc", got ${JSON.stringify(c.signIn)}`);
}

export async function fetchConfig(fetcher: typeof fetch = fetch): Promise<AppConfig> {
  const response = await fetcher("/config.json", { headers: { accept: "application/json" } });
  if (!response.ok) throw new Error(`GET /config.json: HTTP ${response.status}`);
  return parseConfig(await response.json());
}
