import { describe, expect, it } from "vitest";
import { clearSession, jwtClaims, loadSession, newSession, rolesOf, saveSession, SESSION_KEY } from "./session";
import { fakeJwt, memoryStore } from "./testutil";

const NOW = 1_800_000_000_000;

describe("session storage", () => {
  it("keeps the session under the contract's key and reads it back", () => {
    const store = memoryStore();
    const session = newSession("tok", "alice", ["customer"], 3600, NOW);
    saveSession(store, session);
    expect(JSON.parse(store.map.get(SESSION_KEY)!)).toEqual({ token: "tok", user: "alice", roles: ["customer"], expiresAt: NOW + 3_600_000 });
    expect(loadSession(store, NOW + 1000)).toEqual(session);
  });

  it("drops a session that has expired, or is about to", () => {
    const store = memoryStore();
    saveSession(store, newSession("tok", "alice", ["customer"], 60, NOW));
    expect(loadSession(store, NOW + 56_000)).toBeNull();
    expect(store.map.has(SESSION_KEY)).toBe(false);
  });

  it("drops a stored value that is not a session", () => {
    for (const raw of ["{", "null", '{"token":"","user":"a","roles":[],"expiresAt":1}', '{"token":"t","user":"a","roles":"customer","expiresAt":1}']) {
      const store = memoryStore();
      store.setItem(SESSION_KEY, raw);
      expect(loadSession(store, 0), raw).toBeNull();
      expect(store.map.has(SESSION_KEY)).toBe(false);
    }
  });

  it("forgets the session on sign-out", () => {
    const store = memoryStore();
    saveSession(store, newSession("tok", "alice", ["customer"], 3600, NOW));
    clearSession(store);
    expect(loadSession(store, NOW)).toBeNull();
  });
});

describe("token claims", () => {
  it("reads the user and the comma-separated roles of our tokens", () => {
    const claims = jwtClaims(fakeJwt({ sub: "한글-user", roles: "customer,stock_manager", exp: 5 }));
    expect(claims.sub).toBe("한글-user");
    expect(rolesOf(claims)).toEqual(["customer", "stock_manager"]);
  });
  it("reads an array of roles, and none from a token without them", () => {
    expect(rolesOf({ roles: ["customer", 3] })).toEqual(["customer"]);
    expect(rolesOf({})).toEqual([]);
  });
  it("reads nothing from a token that is not a JWT", () => {
    expect(jwtClaims("opaque")).toEqual({});
    expect(jwtClaims("a.!!!.c")).toEqual({});
  });
});
