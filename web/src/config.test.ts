import { describe, expect, it } from "vitest";
import { parseConfig } from "./config";

describe("config.json", () => {
  it("reads development sign-in", () => {
    expect(parseConfig({ signIn: "dev" })).toEqual({ signIn: "dev" });
  });
  it("reads OIDC sign-in, defaulting the scope to openid", () => {
    expect(parseConfig({ signIn: "oidc", issuer: "https://id.example", clientId: "web" })).toEqual({
      signIn: "oidc",
      issuer: "https://id.example",
      clientId: "web",
      scope: "openid",
    });
  });
  it("says what is wrong with a config it cannot use", () => {
    expect(() => parseConfig({ signIn: "oidc", clientId: "web" })).toThrow(/issuer/);
    expect(() => parseConfig({ signIn: "password" })).toThrow(/"password"/);
    expect(() => parseConfig(null)).toThrow(/not an object/);
  });
});
