import { describe, expect, it } from "vitest";
import { base64url, challengeS256, newVerifier } from "./pkce";

// RFC 7636 appendix B: the 32 octets, the verifier made of them, and its S256 challenge.
const OCTETS = new Uint8Array([
  116, 24, 223, 180, 151, 153, 224, 37, 79, 250, 96, 125, 216, 173, 187, 186, 22, 212, 37, 77, 105, 214, 191, 240, 91,
  88, 5, 88, 83, 132, 141, 121,
]);
const VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

describe("PKCE S256", () => {
  it("makes RFC 7636 appendix B's verifier from its octets", () => {
    expect(newVerifier(OCTETS)).toBe(VERIFIER);
  });
  it("makes RFC 7636 appendix B's challenge from its verifier", async () => {
    expect(await challengeS256(VERIFIER)).toBe(CHALLENGE);
  });
  it("makes fresh 43-character base64url verifiers", () => {
    const a = newVerifier();
    const b = newVerifier();
    expect(a).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(a).not.toBe(b);
  });
  it("encodes base64url without padding", () => {
    expect(base64url(new Uint8Array([0xfb, 0xff]))).toBe("-_8");
  });
});
